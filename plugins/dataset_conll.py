"""The `conll` dataset plugin: a folder of CoNLL column files (train.txt, valid.txt, test.txt), as
CoNLL-2003 and most NER corpora ship, read without `datasets.load_dataset` (which has no builder
for them). Each row remembers its file and line, so every problem found later names them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tracker.plugin import Annotated, BuildError, Field, Starter, Task, TaskData, rules, starter
from xp_plugins.conll_files import ConllError, read_sentences
from xp_plugins.dataset import MaxRows, task_data
from xp_plugins.dataset_starter import shown_path
from xp_plugins.split_files import split_files
from xp_plugins.tasks.tag_columns import ROW_SOURCE
from xp_plugins.tasks.tag_schemes import split_tag
from xp_plugins.tasks.token_classification import TokenClassification

if TYPE_CHECKING:
    from datasets import Dataset

# The file names a folder's splits go by, in the order they are looked for.
SPLIT_FILES = {
    "train": ("train.txt",),
    "validation": ("valid.txt", "validation.txt", "dev.txt"),
    "test": ("test.txt",),
}
WORDS, TAGS = "tokens", "tags"  # the columns the rows are read into, as hub-layout NER data names them


def _files_found(options):
    try:
        _split_files(options["path"], options["data_files"])
    except BuildError as error:
        yield error.key, error.message


def _split_files(path: str | None, data_files: Mapping[Any, str] | None) -> dict[str, Path]:
    return split_files(path, data_files, SPLIT_FILES, what="CoNLL files")


def _rows(file: Path, key: str) -> Dataset:
    from datasets import Dataset

    try:
        sentences = read_sentences(file)
    except ConllError as error:
        raise BuildError(key, str(error)) from None
    if not sentences:
        raise BuildError(key, f"{file}: no sentences (a token and its tag per line)")
    return Dataset.from_dict(
        {
            WORDS: [list(sentence.tokens) for sentence in sentences],
            TAGS: [list(sentence.tags) for sentence in sentences],
            ROW_SOURCE: [f"{file}:{sentence.line}" for sentence in sentences],
        }
    )


def _looks_like_conll(file: Path) -> bool:
    """Whether a file's first token line is a word and a tag: then it is CoNLL columns, and any
    later problem is the file's, named with its line (not a reason to read it as something else)."""
    with file.open(encoding="utf-8-sig", errors="replace") as lines:
        for line in lines:
            fields = line.split("\t") if "\t" in line else line.split()
            if not fields or fields[0] == "-DOCSTART-":
                continue
            try:
                split_tag(fields[-1].strip())
            except ValueError:
                return False
            return len(fields) >= 2
    return False


def conll_starter(source: str, config: str | None, task: Task, text_columns, label_column) -> Starter | None:
    """`xp init` for a folder of CoNLL files (train.txt and valid.txt, validation.txt or dev.txt):
    a token-classification experiment; None for anything else (another plugin may read it)."""
    folder = Path(source).expanduser()
    if not folder.is_dir() or not (folder / "train.txt").is_file() or not _looks_like_conll(folder / "train.txt"):
        return None
    for key, given in (("config", config), ("text_columns", text_columns), ("label_column", label_column)):
        if given:
            raise BuildError(key, f"{source} holds CoNLL files, whose columns are a word and its tag: leave it out")
    files = _split_files(str(folder), None)
    splits = {key: _rows(file, "path") for key, file in files.items()}
    tagger = task if isinstance(task, TokenClassification) else TokenClassification()
    proposal = tagger.propose(splits, None, None)
    return Starter(
        use="conll",
        about="CoNLL column files: a word and its tag per line, a blank line between sentences.",
        rows=(
            ("path", shown_path(folder), "train.txt, " + ", ".join(f.name for k, f in files.items() if k != "train")),
        ),
        tables={},
        rows_summary=", ".join(f"{len(split)} {files[key].name} sentences" for key, split in splits.items()),
        proposal=proposal,
        task="token_classification",
    )


@rules(_files_found)
@starter(conll_starter)
def conll(
    task: Task,
    seed: int,
    *,
    path: Annotated[
        str | None, Field(description="a folder of CoNLL files: train.txt, valid.txt (or dev.txt), test.txt")
    ] = None,
    data_files: Annotated[
        dict[Literal["train", "validation", "test"], str] | None,
        Field(description='the file of each split, relative to path: {train = "eng.train", validation = "eng.testa"}'),
    ] = None,
    max_rows: MaxRows = None,
) -> TaskData:
    """CoNLL column files: a word per line with its tag in the last column, a blank line between sentences.

    2 columns (word tag) or 4 (word POS chunk tag), separated by tabs or spaces, LF or CRLF;
    `-DOCSTART-` lines are skipped. Tags may be IOB1, IOB2 or BIOES: the task reads them into
    IOB2. The rows have the columns `tokens` and `tags`; a test file is optional.
    """
    files = _split_files(path, data_files)
    key = "data_files" if data_files else "path"
    splits = {split: _rows(file, key) for split, file in files.items()}
    try:
        return task_data(
            task,
            splits,
            split_names={split: file.name for split, file in files.items()},
            text_columns=[WORDS],
            label_columns=[TAGS],
            label_names=None,
            max_rows=max_rows,
            seed=seed,
            source=lambda sampled: None,
        )
    except BuildError as error:  # the tags are this plugin's column: the file is what to fix
        raise BuildError(key if error.key == "label_column" else error.key, error.message) from None
