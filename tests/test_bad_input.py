"""Every kind of mistake a user makes in an experiment file or on the command line is caught
before training: `FILE: [section] key: what is wrong`, exit code 2, no traceback, no MLflow run.

Each case is one mistake in an otherwise valid, offline experiment (a tiny BERT on a few rows of
paraphrase pairs). Mistakes that need no data are reported alike by `xp validate` and `xp run`;
mistakes that need the data (or this machine) by `xp run` and `xp validate --data`, after the
dataset loads and before any model is built or any run is created.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker.cli import main

BASE = """\
[experiment]
name = "corpus"
seed = 1

[dataset]
use = "hf"
path = "csv"
data_files = {{ train = "data/train.csv", validation = "data/dev.csv", test = "data/test.csv" }}
text_columns = ["sentence1", "sentence2"]
test_split = "test"

[tokenizer]
use = "auto"
max_length = 32

[collator]
use = "dynamic_padding"

[model]
use = "sequence_classification"
checkpoint = "{checkpoint}"

[optimizer]
use = "adamw"
lr = 5e-5

[scheduler]
use = "linear"
warmup_ratio = 0.1

[metrics]
use = ["accuracy", "f1"]

[runner]
use = "loop"
num_epochs = 1
batch_size = 8

[hardware]
device = "cpu"

[tracking]
uri = "sqlite:///mlruns/mlflow.db"
"""


@dataclass(frozen=True)
class Case:
    """One mistake: command-line edits (and maybe a text edit of the file), and where it is reported."""

    id: str
    where: str  # "[section] key" as the message must name it (or a phrase, for whole-file problems)
    sets: tuple[str, ...] = ()
    unsets: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()  # (old, new) pairs in the file's text
    text: str | None = None  # the whole file instead of the base
    extra: tuple[str, ...] = field(default=())  # other phrases the message must hold


def case(id: str, where: str, *sets: str, **options) -> Case:
    return Case(id, where, tuple(sets), **options)


# Mistakes found without the data: `xp validate` and `xp run` report the same lines.
STATIC = [
    # [experiment]
    case("seed negative", "[experiment] seed", "experiment.seed=-1", extra=("in [0, 4294967295]",)),
    case("seed too large", "[experiment] seed", "experiment.seed=1099511627776"),
    case("seed as string", "[experiment] seed", 'experiment.seed="42"', extra=("without quotes",)),
    case("empty name", "[experiment] name", 'experiment.name=""'),
    case("tag not a string", "[experiment] tags", "experiment.tags={team = 3}"),
    case(
        "output folder under a file",
        "[experiment] output_dir",
        'experiment.output_dir="afile/out"',
        extra=("is a file",),
    ),
    case("date as a value", "[experiment] description", "experiment.description=1979-05-27", extra=("date",)),
    case("top-level key", "seed: unknown top-level key", replace=(("[experiment]\n", "seed = 3\n[experiment]\n"),)),
    case(
        "unknown section",
        "[traking]: unknown section",
        replace=(("[tracking]", "[traking]"),),
        extra=('did you mean "tracking"',),
    ),
    case(
        "section as a value",
        "[optimizer]: expected a section",
        replace=(
            ('[optimizer]\nuse = "adamw"\nlr = 5e-5\n', ""),
            ("[experiment]\n", 'optimizer = "adamw"\n[experiment]\n'),
        ),
    ),
    # [dataset]
    case("no text column", "[dataset] text_columns", "dataset.text_columns=[]", extra=("1 to 2 items",)),
    case("three text columns", "[dataset] text_columns", 'dataset.text_columns=["a", "b", "c"]'),
    case("max_rows zero", "[dataset] max_rows", "dataset.max_rows={train = 0}"),
    case("max_rows unknown split", "[dataset] max_rows", "dataset.max_rows={trian = 5}", extra=("train, eval, test",)),
    case("missing local folder", "[dataset] path", 'dataset.path="./nowhere"', extra=("does not exist",)),
    case("loading script", "[dataset] path", 'dataset.path="./loader.py"', extra=("script",)),
    case(
        "missing data file",
        "[dataset] data_files",
        'dataset.data_files={train = "data/nope.csv", validation = "data/dev.csv"}',
        extra=("does not exist",),
    ),
    case("label is a text column", "[dataset] label_column", 'dataset.label_column="sentence1"'),
    case("empty split name", "[dataset] train_split", 'dataset.train_split=""'),
    case("unset required path", "[dataset] path", unsets=("dataset.path",), extra=("missing required key",)),
    # [tokenizer]
    case("max_length zero", "[tokenizer] max_length", "tokenizer.max_length=0"),
    case("num_proc zero", "[tokenizer] num_proc", "tokenizer.num_proc=0"),
    case("padding choice", "[tokenizer] padding", 'tokenizer.padding="longest"', extra=('"none", "max_length"',)),
    case(
        "tokenizer remote code",
        "[tokenizer] trust_remote_code",
        "tokenizer.trust_remote_code=true",
        extra=("--allow-code",),
    ),
    # [collator]
    case("pad multiple zero", "[collator] pad_to_multiple_of", "collator.pad_to_multiple_of=0"),
    case("fixed length negative", "[collator] max_length", 'collator.use="fixed_length"', "collator.max_length=-5"),
    case(
        "fixed length shorter than rows",
        "[collator] max_length",
        'collator.use="fixed_length"',
        "collator.max_length=16",
        extra=("[tokenizer] max_length",),
    ),
    case("unknown collator", "[collator] use", 'collator.use="dynamic"', extra=("Valid choices",)),
    # [model]
    case("missing checkpoint folder", "[model] checkpoint", 'model.checkpoint="./no-model"'),
    case("missing checkpoint package", "[model] checkpoint", 'model.checkpoint="pkg:no_such_package/model"'),
    case("num_labels zero", "[model] num_labels", "model.num_labels=0"),
    case("model remote code", "[model] trust_remote_code", "model.trust_remote_code=true", extra=("--allow-code",)),
    case("overrides not a table", "[model] config_overrides", 'model.config_overrides="big"'),
    # [optimizer]
    case("lr zero", "[optimizer] lr", "optimizer.lr=0", extra=("> 0",)),
    case("lr negative", "[optimizer] lr", "optimizer.lr=-1e-5"),
    case("lr nan", "[optimizer] lr", "optimizer.lr=nan", extra=("finite",)),
    case("lr inf", "[optimizer] lr", "optimizer.lr=inf", extra=("finite",)),
    case("lr word", "[optimizer] lr", "optimizer.lr=fast"),
    case("one beta", "[optimizer] betas", "optimizer.betas=[0.9]"),
    case("beta of one", "[optimizer] betas", "optimizer.betas=[0.9, 1.0]"),
    case("eps zero", "[optimizer] eps", "optimizer.eps=0"),
    case("weight decay negative", "[optimizer] weight_decay", "optimizer.weight_decay=-0.1"),
    case("misspelt key", "[optimizer] weigth_decay", "optimizer.weigth_decay=0.01", extra=('"weight_decay"',)),
    case("nesterov without momentum", "[optimizer] nesterov", 'optimizer.use="sgd"', "optimizer.nesterov=true"),
    case("adafactor with lr", "[optimizer] lr", 'optimizer.use="adafactor"', extra=("relative_step",)),
    # [scheduler]
    case("warmup ratio above one", "[scheduler] warmup_ratio", "scheduler.warmup_ratio=1.5"),
    case("warmup twice", "[scheduler] warmup_ratio", "scheduler.warmup_steps=10", extra=("not both",)),
    case("warmup steps negative", "[scheduler] warmup_steps", "scheduler.warmup_steps=-1"),
    case("cosine cycles zero", "[scheduler] num_cycles", 'scheduler.use="cosine"', "scheduler.num_cycles=0"),
    case(
        "plateau factor one",
        "[scheduler] factor",
        'scheduler.use="reduce_lr_on_plateau"',
        "scheduler.factor=1.0",
        unsets=("scheduler.warmup_ratio",),
    ),
    case("polynomial power zero", "[scheduler] power", 'scheduler.use="polynomial"', "scheduler.power=0"),
    case(
        "phases longer than training",
        "[scheduler] decay_ratio",
        'scheduler.use="warmup_stable_decay"',
        "scheduler.decay_ratio=0.95",
    ),
    case("key of another schedule", "[scheduler] factor", "scheduler.factor=0.5", extra=("unknown key",)),
    # [metrics]
    case("no metric", "[metrics] use", "metrics.use=[]"),
    case("metric twice", "[metrics] use", 'metrics.use=["accuracy", "accuracy"]'),
    case("unknown metric", "[metrics] use", 'metrics.use=["acuracy"]', extra=('"accuracy"',)),
    case("average choice", "[metrics.f1] average", 'metrics.f1.average="samples"'),
    case("pos_label negative", "[metrics.f1] pos_label", "metrics.f1.pos_label=-1"),
    case("pos_label without binary", "[metrics.f1] pos_label", 'metrics.f1.average="macro"', "metrics.f1.pos_label=0"),
    case("metric option outside its table", "[metrics] average", 'metrics.average="macro"', extra=("[metrics.f1]",)),
    case(
        "evaluate script",
        "[metrics.evaluate] path",
        'metrics.use="evaluate"',
        'metrics.evaluate.path="./metric.py"',
        extra=("--allow-code",),
    ),
    case("glue task misspelt", "[metrics.glue] task", 'metrics.use="glue"', 'metrics.glue.task="mrcp"'),
    # [runner]
    case("batch size zero", "[runner] batch_size", "runner.batch_size=0"),
    case("batch size fraction", "[runner] batch_size", "runner.batch_size=8.5"),
    case("batch size string", "[runner] batch_size", 'runner.batch_size="8"'),
    case("no epochs", "[runner] num_epochs", "runner.num_epochs=0"),
    case("max steps negative", "[runner] max_steps", "runner.max_steps=-3"),
    case("accumulation zero", "[runner] gradient_accumulation_steps", "runner.gradient_accumulation_steps=0"),
    case("grad norm negative", "[runner] max_grad_norm", "runner.max_grad_norm=-1"),
    case("grad norm inf", "[runner] max_grad_norm", "runner.max_grad_norm=inf"),
    case("steps without eval_steps", "[runner] eval_steps", 'runner.eval_strategy="steps"'),
    case("eval_steps without steps", "[runner] eval_steps", "runner.eval_steps=10"),
    case(
        "early stopping without evaluation",
        "[runner] early_stopping_patience",
        'runner.eval_strategy="no"',
        "runner.early_stopping_patience=2",
    ),
    case(
        "best metric not computed",
        "[runner] metric_for_best",
        'runner.metric_for_best="eval_f2"',
        extra=("eval_accuracy, eval_f1, eval_loss",),
    ),
    case("logging steps zero", "[runner] logging_steps", "runner.logging_steps=0"),
    case("workers negative", "[runner] num_workers", "runner.num_workers=-1"),
    case("eval batch zero", "[runner] eval_batch_size", "runner.eval_batch_size=0"),
    case("min delta negative", "[runner] early_stopping_min_delta", "runner.early_stopping_min_delta=-0.1"),
    case(
        "trainer checkpoint key",
        "[runner] save_strategy",
        'runner.use="trainer"',
        'runner.save_strategy="steps"',
        extra=("[checkpoint]", "every_steps"),
    ),
    case(
        "trainer checkpoint limit",
        "[runner] save_total_limit",
        'runner.use="trainer"',
        "runner.save_total_limit=2",
        extra=("[checkpoint]", "keep = K"),
    ),
    case("unknown runner", "[runner] use", 'runner.use="lop"', extra=('did you mean "loop"',)),
    case("unset unknown key", "[runner] nonexistent", unsets=("runner.nonexistent",), extra=("--unset",)),
    # [hardware] and [tracking]
    case("fp16 on cpu", "[hardware] precision", 'hardware.precision="fp16"', extra=("GPU",)),
    case("threads zero", "[hardware] cpu_threads", "hardware.cpu_threads=0"),
    case("device choice", "[hardware] device", 'hardware.device="tpu"'),
    case("file store", "[tracking] uri", 'tracking.uri="file:///tmp/mlruns"', extra=("sqlite",)),
    case("unknown scheme", "[tracking] uri", 'tracking.uri="ftp://host/x"'),
    case("store under a file", "[tracking] uri", 'tracking.uri="sqlite:///afile/sub/mlflow.db"'),
    case("enabled as string", "[tracking] enabled", 'tracking.enabled="yes"'),
    # [checkpoint]
    case("checkpoint steps zero", "[checkpoint] every_steps", "checkpoint.every_steps=0"),
    case("checkpoint keep zero", "[checkpoint] keep", "checkpoint.keep=0"),
    case(
        "checkpoint at evaluation without any",
        "[checkpoint] at_evaluation",
        'runner.eval_strategy="no"',
        "checkpoint.at_evaluation=true",
        extra=("every_steps",),
    ),
    case("checkpoint unknown key", "[checkpoint] every", "checkpoint.every=5", extra=('did you mean "every_steps"',)),
    # whole files
    case("binary file", "binary content", text="\0\1\2[experiment]\n"),
    case("deep nesting", "nested too deeply", text="x = " + "[" * 5000 + "]" * 5000 + "\n"),
    case("huge file", "larger than", text="# " + "x" * (2 * 1024 * 1024) + "\n"),
    case("not UTF-8", "not UTF-8", text='[experiment]\nname = "caf\xe9"\n'),
]

# Mistakes only the data (or this machine) shows: `xp run` and `xp validate --data` report them,
# before a model is built or an MLflow run exists.
NEEDS_DATA = [
    case("correlation on classes", "[metrics.pearson]", 'metrics.use="pearson"', extra=("regression",)),
    case(
        "binary f1 on three classes",
        "[metrics.f1] average",
        'dataset.data_files={train = "data/three.csv", validation = "data/three.csv"}',
        extra=("3 classes",),
        unsets=("dataset.test_split",),
    ),
    case("pos_label beyond the classes", "[metrics.f1] pos_label", "metrics.f1.pos_label=5"),
    case("glue task of three classes", "[metrics.glue] task", 'metrics.use="glue"', 'metrics.glue.task="mnli"'),
    case(
        "accuracy on regression",
        "[metrics.accuracy]",
        'metrics.use="accuracy"',
        'dataset.data_files={train = "data/scores.csv", validation = "data/scores.csv"}',
        unsets=("dataset.test_split",),
    ),
    case("num_labels disagrees", "[model] num_labels", "model.num_labels=3"),
    case(
        "override unknown attribute",
        "[model] config_overrides",
        "model.config_overrides={hidden_sizee = 64}",
        extra=('"hidden_size"',),
    ),
    case("override wrong type", "[model] config_overrides", 'model.config_overrides={num_hidden_layers = "six"}'),
    case(
        "override breaks the architecture",
        "[model] config_overrides",
        "model.config_overrides={num_attention_heads = 5}",
    ),
    case(
        "unlabelled rows",
        "[dataset] label_column",
        'dataset.data_files={train = "data/unlabelled.csv", validation = "data/dev.csv"}',
        extra=('no "label"',),
        unsets=("dataset.test_split",),
    ),
    case(
        "rows without text",
        "[dataset] text_columns",
        'dataset.data_files={train = "data/no_text.csv", validation = "data/dev.csv"}',
        extra=('no "sentence2" text',),
        unsets=("dataset.test_split",),
    ),
    case(
        "single class",
        "[dataset] label_column",
        'dataset.data_files={train = "data/one_class.csv", validation = "data/one_class.csv"}',
        unsets=("dataset.test_split",),
    ),
    case("missing text column", "[dataset] text_columns", 'dataset.text_columns=["sentence1", "sentenc2"]'),
    case("missing label column", "[dataset] label_column", 'dataset.label_column="labels"'),
    case("missing split", "[dataset] eval_split", 'dataset.eval_split="dev"'),
    case("cuda on a cpu machine", "[hardware] device", 'hardware.device="cuda"'),
    case("unreachable server", "[tracking] uri", 'tracking.uri="http://127.0.0.1:9"', extra=("cannot reach",)),
]


def _rows(labels: list) -> str:
    lines = ["sentence1,sentence2,label"]
    for index, label in enumerate(labels):
        lines.append(f"the cat sat number {index},a cat was sitting {index},{label}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_checkpoint) -> Path:
    """A folder holding the base experiment, its data and the files some mistakes point at."""
    folder = tmp_path_factory.mktemp("corpus")
    data = folder / "data"
    data.mkdir()
    (data / "train.csv").write_text(_rows(["yes", "no"] * 8))
    (data / "dev.csv").write_text(_rows(["yes", "no"] * 4))
    (data / "test.csv").write_text("id,sentence1,sentence2\n" + "".join(f"{i},a {i},b {i}\n" for i in range(4)))
    (data / "three.csv").write_text(_rows(["a", "b", "c"] * 4))
    (data / "scores.csv").write_text(_rows([0.5, 1.5, 2.5, 3.5] * 3))
    (data / "unlabelled.csv").write_text(_rows(["yes", "", "no", "yes"]))
    (data / "one_class.csv").write_text(_rows(["yes"] * 6))
    (data / "no_text.csv").write_text("sentence1,sentence2,label\na,b,yes\nc,,no\nd,e,yes\nf,g,no\n")
    (folder / "afile").write_text("a file, not a folder\n")
    (folder / "loader.py").write_text("raise SystemExit('a loading script must never run')\n")
    (folder / "metric.py").write_text("raise SystemExit('a metric script must never run')\n")
    (folder / "base.toml").write_text(BASE.format(checkpoint=tiny_checkpoint))
    return folder


def _file_for(workspace: Path, mistake: Case) -> Path:
    text = mistake.text if mistake.text is not None else (workspace / "base.toml").read_text()
    for old, new in mistake.replace:
        assert old in text, old
        text = text.replace(old, new)
    path = workspace / f"{mistake.id.replace(' ', '_')}.toml"
    path.write_bytes(text.encode("latin-1") if mistake.id == "not UTF-8" else text.encode())
    return path


def _xp(command: str, path: Path, mistake: Case, *flags: str):
    arguments = [command, *flags, str(path)]
    for text in mistake.sets:
        arguments += ["--set", text]
    for text in mistake.unsets:
        arguments += ["--unset", text]
    return CliRunner().invoke(main, arguments)


def _problem_lines(result, path: Path) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(f"{path}:")]


def _runs_in_store(workspace: Path) -> int:
    database = workspace / "mlruns" / "mlflow.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as connection:
        return connection.execute("select count(*) from runs").fetchone()[0]


def _assert_reported(result, path: Path, mistake: Case) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = _problem_lines(result, path)
    assert any(mistake.where in line for line in lines), result.output
    for phrase in mistake.extra:
        assert any(phrase in line for line in lines), (phrase, result.output)


def test_the_corpus_is_broad():
    assert len(STATIC) + len(NEEDS_DATA) >= 60
    sections = {m.where.split("]")[0].strip("[").split(".")[0] for m in STATIC + NEEDS_DATA if m.where.startswith("[")}
    assert {
        "experiment",
        "dataset",
        "tokenizer",
        "collator",
        "model",
        "optimizer",
        "scheduler",
        "metrics",
        "runner",
        "hardware",
        "tracking",
    } <= sections


def test_the_base_experiment_is_valid_with_its_data(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    result = CliRunner().invoke(main, ["validate", "--data", "base.toml"])

    assert result.exit_code == 0, result.output
    assert "ok (data checked): base.toml" in result.output


@pytest.mark.parametrize("mistake", STATIC, ids=[m.id for m in STATIC])
def test_mistakes_without_data_are_reported_alike_by_validate_and_run(workspace, monkeypatch, mistake):
    monkeypatch.chdir(workspace)
    path = _file_for(workspace, mistake)

    validated = _xp("validate", path, mistake)
    ran = _xp("run", path, mistake)

    _assert_reported(validated, path, mistake)
    _assert_reported(ran, path, mistake)
    assert _problem_lines(validated, path) == _problem_lines(ran, path)
    assert _runs_in_store(workspace) == 0


@pytest.mark.parametrize("mistake", NEEDS_DATA, ids=[m.id for m in NEEDS_DATA])
def test_mistakes_in_the_data_are_reported_by_run_before_any_run_exists(workspace, monkeypatch, mistake):
    monkeypatch.chdir(workspace)
    path = _file_for(workspace, mistake)

    assert _xp("validate", path, mistake).exit_code == 0  # the file itself is fine
    checked = _xp("validate", path, mistake, "--data")
    ran = _xp("run", path, mistake)

    _assert_reported(checked, path, mistake)
    _assert_reported(ran, path, mistake)
    assert _problem_lines(checked, path) == _problem_lines(ran, path)
    assert _runs_in_store(workspace) == 0
    assert not (workspace / "outputs").exists()  # nothing half-written either
