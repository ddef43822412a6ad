"""The `squad` dataset plugin: SQuAD JSON files as published (v1.1 and v2.0: `data` → `paragraphs`
→ `qas`), read without `datasets.load_dataset` (its json builder would read the nesting as one
row per file). The rows are the hub's flattened layout: `id`, `title`, `context`, `question`,
`answers`. The flattened layout in JSON Lines or Parquet is the `hf` plugin's."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tracker.plugin import Annotated, BuildError, Field, Fraction, Starter, Task, TaskData, rules, starter
from xp_plugins.dataset import MaxRows, task_data
from xp_plugins.dataset_starter import shown_path
from xp_plugins.split_files import split_files
from xp_plugins.squad_files import SquadError, looks_like_squad, read_squad
from xp_plugins.tasks.question_answering import QuestionAnswering

if TYPE_CHECKING:
    from datasets import Dataset

# The file names a folder's splits go by, in the order they are looked for.
SPLIT_FILES = {
    "train": ("train.json", "train-v2.0.json", "train-v1.1.json"),
    "validation": ("dev.json", "validation.json", "dev-v2.0.json", "dev-v1.1.json"),
    "test": ("test.json",),
}
TEXT_COLUMNS, ANSWERS = ("question", "context"), "answers"


def _files_found(options):
    try:
        _split_files(options["path"], options["data_files"], needs_validation=options["validation_fraction"] is None)
    except BuildError as error:
        yield error.key, error.message


def _split_files(path: str | None, data_files: Mapping[Any, str] | None, *, needs_validation: bool) -> dict[str, Path]:
    return split_files(
        path,
        data_files,
        SPLIT_FILES,
        what="SQuAD files",
        needed=("train", "validation") if needs_validation else ("train",),
        hints={"validation": ", or hold out part of the training file with validation_fraction"},
    )


def _rows(file: Path, key: str) -> Dataset:
    from datasets import Dataset

    try:
        read = read_squad(file)
    except SquadError as error:
        raise BuildError(key, str(error)) from None
    if not read.rows["id"]:
        raise BuildError(key, f"{file}: no questions (data → paragraphs → qas)")
    return Dataset.from_dict(read.rows)


def _held_out(train: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """The training rows split in two by context: `fraction` of the contexts (drawn with the seed)
    and all their questions for validation, so no context is read in training and scored too."""
    contexts = list(dict.fromkeys(train["context"]))
    wanted = max(1, round(fraction * len(contexts)))
    if wanted >= len(contexts):
        raise BuildError(
            "validation_fraction", f"holds out all {len(contexts)} contexts of the training file: lower it"
        )
    held = set(random.Random(seed).sample(contexts, wanted))
    rows = train["context"]
    return (
        train.select([i for i, context in enumerate(rows) if context not in held]),
        train.select([i for i, context in enumerate(rows) if context in held]),
    )


def squad_starter(source: str, config: str | None, task: Task, text_columns, label_column) -> Starter | None:
    """`xp init` for a folder of SQuAD JSON files (train.json and dev.json or validation.json): a
    question-answering experiment; None for anything else (another plugin may read it)."""
    folder = Path(source).expanduser()
    train = next((folder / name for name in SPLIT_FILES["train"] if (folder / name).is_file()), None)
    if not folder.is_dir() or train is None or not looks_like_squad(train):
        return None
    for key, given in (("config", config), ("text_columns", text_columns), ("label_column", label_column)):
        if given:
            raise BuildError(key, f"{source} holds SQuAD files, whose columns are SQuAD's: leave it out")
    has_validation = any((folder / name).is_file() for name in SPLIT_FILES["validation"])
    files = _split_files(str(folder), None, needs_validation=False)
    splits = {key: _rows(file, "path") for key, file in files.items()}
    reader = task if isinstance(task, QuestionAnswering) else QuestionAnswering()
    proposal = reader.propose(splits, list(TEXT_COLUMNS), ANSWERS)
    rows: list[tuple[str, Any, str | None]] = [("path", shown_path(folder), ", ".join(f.name for f in files.values()))]
    if not has_validation:
        rows.append(("validation_fraction", 0.2, "no validation file: a fifth of the contexts are held out"))
    return Starter(
        use="squad",
        about="SQuAD JSON files: articles, their paragraphs (contexts), and each paragraph's questions.",
        rows=tuple(rows),
        tables={},
        rows_summary=", ".join(f"{len(split)} {files[key].name} questions" for key, split in splits.items()),
        proposal=proposal,
        task="question_answering",
    )


@rules(_files_found)
@starter(squad_starter)
def squad(
    task: Task,
    seed: int,
    *,
    path: Annotated[
        str | None,
        Field(description="a folder of SQuAD JSON files: train.json, dev.json (or validation.json), test.json"),
    ] = None,
    data_files: Annotated[
        dict[Literal["train", "validation", "test"], str] | None,
        Field(
            description='the file of each split, relative to path: {train = "train-v2.0.json", '
            'validation = "dev-v2.0.json"}'
        ),
    ] = None,
    validation_fraction: Annotated[
        Fraction | None,
        Field(
            description="no validation file: hold out this share of the training file's contexts (with all "
            "their questions), drawn with the seed"
        ),
    ] = None,
    max_rows: MaxRows = None,
) -> TaskData:
    """SQuAD JSON files as published, v1.1 or v2.0 (questions with no answer; `[task] allow_no_answer`).

    Each question is a row of `id`, `title`, `context`, `question` and `answers` (`{"text": [...],
    "answer_start": [...]}`), the hub's layout; its question and context are the text columns. A
    test file is optional; without answers it is predicted, not scored."""
    files = _split_files(path, data_files, needs_validation=validation_fraction is None)
    key = "data_files" if data_files else "path"
    splits = {split: _rows(file, key) for split, file in files.items()}
    names = {split: file.name for split, file in files.items()}
    if validation_fraction is not None:
        if "eval" in splits:
            raise BuildError("validation_fraction", f"the data has a validation file ({names['eval']}): leave it out")
        splits["train"], splits["eval"] = _held_out(splits["train"], validation_fraction, seed)
        names["eval"] = f"{names['train']} (held out)"
    try:
        return task_data(
            task,
            splits,
            split_names=names,
            text_columns=list(TEXT_COLUMNS),
            label_columns=[ANSWERS],
            label_names=None,
            max_rows=max_rows,
            seed=seed,
            source=lambda sampled: None,
        )
    except BuildError as error:  # the answers are this plugin's column: the file is what to fix
        raise BuildError(key if error.key in ("label_column", "text_columns") else error.key, error.message) from None
