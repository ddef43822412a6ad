"""The `conll` dataset plugin: a folder of CoNLL column files (train.txt, valid.txt, test.txt), as
CoNLL-2003 and most NER corpora ship, read without `datasets.load_dataset` (which has no builder
for them). Each row remembers its file and line, so every problem found later names them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tracker.plugin import Annotated, BuildError, Field, PositiveInt, Task, TaskData, rules
from xp_plugins.conll_files import ConllError, read_sentences
from xp_plugins.tasks.token_classification import ROW_SOURCE

if TYPE_CHECKING:
    from datasets import Dataset

# The file names a folder's splits go by, in the order they are looked for.
SPLIT_FILES = {
    "train": ("train.txt",),
    "validation": ("valid.txt", "validation.txt", "dev.txt"),
    "test": ("test.txt",),
}
KEYS = {"train": "train", "validation": "eval", "test": "test"}  # split name -> the task's key
WORDS, TAGS = "tokens", "tags"  # the columns the rows are read into, as hub-layout NER data names them


def _files_found(options):
    try:
        _split_files(options["path"], options["data_files"])
    except BuildError as error:
        yield error.key, error.message


def _split_files(path: str | None, data_files: Mapping[Any, str] | None) -> dict[str, Path]:
    """The file of each split, by the task's key: named in `data_files` (relative to `path`, or
    to the working directory), else found in the folder `path` by its usual names."""
    folder = Path(path).expanduser() if path is not None else None
    if folder is not None and not folder.is_dir():
        raise BuildError("path", f'"{path}" is not a folder (resolved to {folder.resolve()})')
    if data_files:
        files = {name: (folder or Path(".")) / Path(file).expanduser() for name, file in data_files.items()}
        for name, file in files.items():
            if not file.is_file():
                raise BuildError(
                    "data_files", f'{name}: "{data_files[name]}" does not exist (looked for {file.resolve()})'
                )
    elif folder is not None:
        files = {}
        for name, candidates in SPLIT_FILES.items():
            found = next((folder / c for c in candidates if (folder / c).is_file()), None)
            if found is not None:
                files[name] = found
    else:
        raise BuildError("path", "name a folder of CoNLL files (path), or the files of each split (data_files)")
    for needed in ("train", "validation"):
        if needed not in files:
            expected = " or ".join(SPLIT_FILES[needed])
            raise BuildError(
                "data_files" if data_files else "path",
                f"no {needed} file: expected {expected} in {folder}, or data_files = {{{needed} = ...}}",
            )
    return {KEYS[name]: file for name, file in files.items()}


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


@rules(_files_found)
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
    max_rows: Annotated[
        dict[Literal["train", "eval", "test"], PositiveInt] | None,
        Field(description="a seeded random sample of sentences per split, for quick runs"),
    ] = None,
) -> TaskData:
    """CoNLL column files: a word per line with its tag in the last column, a blank line between sentences.

    2 columns (word tag) or 4 (word POS chunk tag), separated by tabs or spaces, LF or CRLF;
    `-DOCSTART-` lines are skipped. Tags may be IOB1, IOB2 or BIOES: the task reads them into
    IOB2. The rows have the columns `tokens` and `tags`; a test file is optional.
    """
    from xp_plugins.dataset import task_data

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
