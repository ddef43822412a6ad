"""The runners `trainer`, `loop` and `accelerate`, end to end through the recipe on a tiny BERT.

What every runner promises: the same metric names logged at the same optimizer steps, gradient
accumulation counted in optimizer steps, early stopping that restores the best weights, a
predictions file and a loadable saved model, and the same run on two CPU processes. Then what
`xp run` does when an experiment cannot run here, cannot be built, or crashes.

Experiments are written as TOML to a temporary folder and loaded like any experiment file; the
data are small CSVs cut from experiments/data/paraphrase, labels spelled as names.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.experiment_files import write_experiment
from tests.plugins.paraphrase_splits import LABELS, write_split
from tests.tables import table_rows
from tracker.api import load
from tracker.diagnosis import VERDICTS
from tracker.errors import ExperimentError
from tracker.recipe import run_experiment
from tracker.registry import load_registry
from tracker.reporting import NullLogger

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNERS = ("trainer", "loop", "accelerate")

# What every runner logs, and when: training metrics at logging steps, evaluation metrics at
# evaluation steps, test metrics once at the end when the test split has labels.
TRAIN_LOG = {"train_loss", "learning_rate", "grad_norm", "epoch", "train_samples_per_second", "train_tokens_per_second"}
EVAL_LOG = {"eval_loss", "eval_accuracy", "eval_f1", "epoch"}
TEST_LOG = {"test_loss", "test_accuracy", "test_f1"}


# -- experiments on disk -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def contrary_data(tmp_path_factory, paraphrase_rows) -> dict[str, str]:
    """Every training row says "paraphrase", every validation row "different": the more the model
    learns, the higher the validation loss. The test split is the validation split again, so
    test metrics show which weights the run ended with."""
    folder = tmp_path_factory.mktemp("contrary")
    validation = write_split(folder / "validation.csv", paraphrase_rows[24:40], label="different")
    return {
        "train": write_split(folder / "train.csv", paraphrase_rows[:24], label="paraphrase"),
        "validation": validation,
        "test": validation,
    }


class RecordingLogger(NullLogger):
    """A run logger that keeps every call, for asserting what a runner logged and when."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.artifacts: list[Path] = []
        self.tags: dict[str, str] = {}

    def log_metrics(self, metrics, step: int) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_artifact(self, path, folder=None) -> None:
        self.artifacts.append(Path(path))

    def set_tags(self, tags) -> None:
        self.tags.update(tags)

    def steps(self, name: str) -> list[int]:
        """The step of every log of `name`."""
        return [step for step, metrics in self.metrics if name in metrics]

    def values(self, name: str) -> list[float]:
        """The value of every log of `name`."""
        return [metrics[name] for _, metrics in self.metrics if name in metrics]

    def shape(self) -> list[tuple[int, set[str]]]:
        return [(step, set(metrics)) for step, metrics in self.metrics]


def run(path: Path, *overrides: str):
    """Load and run an experiment file the way `xp run` does; the result and what was logged."""
    logger = RecordingLogger()

    @contextlib.contextmanager
    def start_run(experiment, parts, runner):
        yield logger

    registry = load_registry()
    return run_experiment(load(path, overrides, registry), registry, start_run), logger


def read_predictions(path: Path) -> list[list[str]]:
    with Path(path).open(newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def offline_env(folder: Path) -> dict[str, str]:
    """The environment of a child process: offline, one thread, its own datasets cache."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "HF_DATASETS_CACHE": str(folder / "datasets-cache"),
        "PYTHONPATH": str(REPO_ROOT),
    }


def xp(*args: str, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """`python -m tracker ARGS` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        check=False,
        cwd=cwd,
        env=offline_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- every runner, end to end ------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_checkpoint, data):
    """Each runner once on the same experiment: 24 rows in batches of 8 for 2 epochs is 6 steps,
    evaluation after each epoch, a labelled test split, and the model saved at the end."""
    results = {}
    for runner in RUNNERS:
        folder = tmp_path_factory.mktemp(runner)
        path = write_experiment(
            folder / f"{runner}.toml", tiny_checkpoint, data, runner={"use": runner, "save_model": True}
        )
        results[runner] = run(path)
    return results


@pytest.mark.parametrize("runner", RUNNERS)
def test_runner_trains_evaluates_and_tests(runs, runner):
    result, logger = runs[runner]
    assert result.steps == 6
    assert set(result.eval_metrics) == {"eval_loss", "eval_accuracy", "eval_f1"}
    assert set(result.test_metrics) == TEST_LOG
    assert 0 <= result.eval_metrics["eval_accuracy"] <= 1 and result.eval_metrics["eval_loss"] > 0
    assert result.diagnosis.verdict in VERDICTS
    assert result.best_step is None  # no early stopping configured
    # The final metrics are those of the last evaluation, not of another pass over the data.
    final_eval = {k: v for k, v in logger.metrics[-2][1].items() if k != "epoch"}
    assert result.eval_metrics == pytest.approx(final_eval)
    assert logger.tags["xp.diagnosis"] == result.diagnosis.verdict


@pytest.mark.parametrize("runner", RUNNERS)
def test_runner_logs_the_shared_names_at_optimizer_steps(runs, runner):
    _, logger = runs[runner]
    assert logger.shape() == [
        (1, TRAIN_LOG),
        (2, TRAIN_LOG),
        (3, TRAIN_LOG),
        (3, EVAL_LOG),
        (4, TRAIN_LOG),
        (5, TRAIN_LOG),
        (6, TRAIN_LOG),
        (6, EVAL_LOG),
        (6, TEST_LOG),
    ]
    for name in ("train_loss", "grad_norm", "train_samples_per_second", "train_tokens_per_second"):
        assert all(value > 0 for value in logger.values(name)), name


def test_every_runner_means_the_same_by_step_epoch_and_learning_rate(runs):
    # learning_rate is the rate the step used: the configured 1e-3 at step 1, then linear decay.
    expected_lr = [1e-3 * (7 - step) / 6 for step in range(1, 7)]
    for runner in RUNNERS:
        _, logger = runs[runner]
        assert logger.values("learning_rate") == pytest.approx(expected_lr), runner
        train_epochs = [metrics["epoch"] for _, metrics in logger.metrics if "train_loss" in metrics]
        eval_epochs = [metrics["epoch"] for _, metrics in logger.metrics if "eval_loss" in metrics]
        assert train_epochs == pytest.approx([step / 3 for step in range(1, 7)]), runner
        assert eval_epochs == pytest.approx([1.0, 2.0]), runner


@pytest.mark.parametrize("runner", RUNNERS)
def test_labelled_test_split_gives_predictions_with_label_names(runs, data, runner):
    result, logger = runs[runner]
    rows = read_predictions(result.predictions_path)
    assert rows[0] == ["idx", "label", "score"]  # the data's own id column name
    test_ids = [row["idx"] for row in csv.DictReader(Path(data["test"]).read_text(encoding="utf-8").splitlines())]
    assert [row[0] for row in rows[1:]] == test_ids  # one row per test row, in order
    assert {row[1] for row in rows[1:]} <= set(LABELS.values())
    assert all(0.5 <= float(row[2]) <= 1 for row in rows[1:])  # the predicted class's probability
    assert result.predictions_path in logger.artifacts


@pytest.mark.parametrize("runner", RUNNERS)
def test_saved_model_loads_with_from_pretrained(runs, runner):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result, _ = runs[runner]
    model = AutoModelForSequenceClassification.from_pretrained(result.model_dir)
    assert model.config.id2label == {0: "different", 1: "paraphrase"}
    tokenizer = AutoTokenizer.from_pretrained(result.model_dir)
    logits = model(**tokenizer("A cat sat.", "A cat was sitting.", return_tensors="pt")).logits
    assert logits.shape == (1, 2)


@pytest.mark.parametrize("runner", RUNNERS)
def test_unlabelled_test_split_gives_predictions_but_no_test_metrics(tmp_path, tiny_checkpoint, mrpc_path, runner):
    # GLUE hides MRPC's test labels (-1); the class names come from the dataset's ClassLabel.
    path = write_experiment(
        tmp_path / "mrpc.toml",
        tiny_checkpoint,
        None,
        dataset={"path": str(mrpc_path), "test_split": "test", "max_rows": {"train": 16, "eval": 8, "test": 9}},
        runner={"use": runner, "max_steps": 2},
    )
    result, logger = run(path)
    assert result.test_metrics == {}
    assert not any(name.startswith("test_") for _, metrics in logger.metrics for name in metrics)
    rows = read_predictions(result.predictions_path)
    assert rows[0] == ["idx", "label", "score"] and len(rows) == 1 + 9
    assert len({int(row[0]) for row in rows[1:]}) == 9  # MRPC's idx column
    assert {row[1] for row in rows[1:]} <= {"not_equivalent", "equivalent"}


# -- gradient accumulation, and the same numbers from `loop` and `accelerate` -------------------


@pytest.fixture(scope="module")
def accumulated(tmp_path_factory, tiny_checkpoint, data):
    """24 rows in batches of 4 is 6 batches an epoch; accumulating 4 makes 2 optimizer steps an
    epoch, the second from a partial accumulation of 2 batches. Dropout is on (BERT's 0.1)."""
    results = {}
    for runner in RUNNERS:
        folder = tmp_path_factory.mktemp(f"accumulate-{runner}")
        path = write_experiment(
            folder / "accumulate.toml",
            tiny_checkpoint,
            data,
            runner={"use": runner, "batch_size": 4, "gradient_accumulation_steps": 4},
        )
        results[runner] = run(path)
    return results


@pytest.mark.parametrize("runner", RUNNERS)
def test_gradient_accumulation_counts_optimizer_steps(accumulated, runner):
    result, logger = accumulated[runner]
    steps_per_epoch = math.ceil(6 / 4)
    assert result.steps == steps_per_epoch * 2 == 4
    assert logger.steps("train_loss") == [1, 2, 3, 4]
    assert logger.steps("eval_loss") == [2, 4]
    # epoch is the share of the data seen: 4 of 6 batches at step 1, as the Trainer counts it.
    assert logger.values("epoch") == pytest.approx([4 / 6, 1.0, 1.0, 1 + 4 / 6, 2.0, 2.0])


def test_loop_and_accelerate_train_identically_with_the_same_seed(accumulated):
    # Same data order (each DataLoader shuffles from its own seeded generator, which Accelerate
    # keeps), same dropout masks (the global RNG is seeded once, before the model is built).
    loop, accelerate = accumulated["loop"][1], accumulated["accelerate"][1]
    assert len({round(value, 6) for value in loop.values("train_loss")}) > 1  # not a constant curve
    for name in ("train_loss", "grad_norm", "eval_loss"):
        assert accelerate.steps(name) == loop.steps(name)
        assert accelerate.values(name) == pytest.approx(loop.values(name), rel=1e-5), name


def test_length_grouped_training_matches_across_loop_and_accelerate(tmp_path, tiny_checkpoint, data):
    """`group_by_length` changes the batches, not the promise: the same seed gives `loop` and
    `accelerate` the same grouped batches and so the same losses."""
    losses = {}
    for runner in ("loop", "accelerate"):
        path = write_experiment(
            tmp_path / f"{runner}.toml", tiny_checkpoint, data, runner={"use": runner, "group_by_length": True}
        )
        losses[runner] = run(path)[1].values("train_loss")
    assert len(losses["loop"]) == 6
    assert losses["accelerate"] == pytest.approx(losses["loop"], rel=1e-5)


def test_unlabelled_test_split_is_not_predicted_when_predictions_are_off(
    tmp_path, tiny_checkpoint, mrpc_path, monkeypatch
):
    from xp_plugins.runner import training_loop

    predicted = []
    original = training_loop.predict
    monkeypatch.setattr(
        training_loop,
        "predict",
        lambda model, loader, *args, **kw: predicted.append(len(loader)) or original(model, loader, *args, **kw),
    )
    path = write_experiment(
        tmp_path / "mrpc.toml",
        tiny_checkpoint,
        None,
        dataset={"path": str(mrpc_path), "test_split": "test", "max_rows": {"train": 16, "eval": 8, "test": 9}},
        runner={"max_steps": 2, "predict": False},
    )
    result, _ = run(path)
    assert result.predictions_path is None
    assert predicted == [1]  # the validation split only, in one batch of 8


# -- early stopping ------------------------------------------------------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("metric", ["eval_loss", "f1"])
def test_early_stopping_stops_and_restores_the_best_weights(tmp_path, tiny_checkpoint, contrary_data, runner, metric):
    # eval_loss rises from the first evaluation on; f1 of "paraphrase" on rows that are all
    # "different" is 0 at every evaluation, so it cannot improve. Either way the first
    # evaluation is the best and, with patience 1, the second one stops the run.
    path = write_experiment(
        tmp_path / "stop.toml",
        tiny_checkpoint,
        contrary_data,
        optimizer={"lr": 1e-2},
        runner={
            "use": runner,
            "num_epochs": 4,
            "eval_strategy": "steps",
            "eval_steps": 1,
            "early_stopping_patience": 1,
            "metric_for_best": metric,
        },
    )
    result, logger = run(path)
    evals = dict(zip(logger.steps("eval_loss"), logger.values("eval_loss"), strict=True))
    assert result.steps == 2 < 4 * 3
    assert result.best_step == 1
    assert evals[2] > evals[1] * 1.001
    assert result.eval_metrics["eval_loss"] == pytest.approx(evals[1], rel=1e-5)
    # The test split is the validation split, scored after training: the weights are step 1's.
    assert result.test_metrics["test_loss"] == pytest.approx(evals[1], rel=1e-4)


# -- two processes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, tiny_checkpoint, data):
    """`torchrun --nproc_per_node 2 -m tracker run` on an Accelerate experiment: 24 rows in batches
    of 4 for one epoch, which one process alone would do in 6 steps."""
    pytest.importorskip("torch.distributed.run")
    folder = tmp_path_factory.mktemp("two-processes")
    path = write_experiment(
        folder / "ddp.toml", tiny_checkpoint, data, runner={"use": "accelerate", "num_epochs": 1, "batch_size": 4}
    )
    # --standalone: a rendezvous on a free local port, so parallel test runs cannot collide.
    # (`accelerate launch --cpu --num_processes 2` would start one process: CPU needs mpirun there.)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "tracker",
        "run",
        str(path),
    ]
    done = subprocess.run(
        command, check=False, cwd=folder, env=offline_env(folder), capture_output=True, text=True, timeout=300
    )
    return done, folder / "outputs"


def test_accelerate_runner_trains_on_two_cpu_processes(two_processes):
    done, outputs = two_processes
    assert done.returncode == 0, done.stderr[-4000:]
    # Each process makes 3 steps on its half of the rows; only the main process reports them.
    assert done.stderr.count("evaluation step 3: loss") == 1 and "step 6:" not in done.stderr
    predictions = list(outputs.glob("*/predictions.csv"))
    assert len(predictions) == 1
    assert len(read_predictions(predictions[0])) == 1 + 11  # every test row once, none padded in


def test_only_the_main_process_prints_the_summary(two_processes):
    done, _ = two_processes
    assert done.stdout.count("status") == 1 and "finished" in done.stdout  # one table, one header
    summary = [line.split()[0] for line in done.stderr.splitlines() if line.startswith(("status ", "curves "))]
    assert summary == ["status", "curves"]  # one run summary, not one per process


# -- what `xp run` does with experiments that cannot run -----------------------------------------


def test_fp16_on_cpu_is_refused_before_any_data_is_loaded(tmp_path, tiny_checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    # device = "auto" only becomes "cpu" on this machine, so the file itself is valid. The dataset
    # is a hub id that cannot load offline: building the dataset first would report that instead.
    path = write_experiment(
        tmp_path / "fp16.toml",
        tiny_checkpoint,
        None,
        dataset={"path": "no-such-org/no-such-dataset"},
        hardware={"device": "auto", "precision": "fp16"},
    )
    with pytest.raises(ExperimentError) as caught:
        run(path)
    [problem] = caught.value.problems
    assert (problem.section, problem.key) == ("hardware", "precision")
    assert str(problem).startswith(f"{path}: [hardware] precision: fp16")
    assert 'device = "auto" is "cpu" on this machine' in problem.message


def test_fp16_with_device_cpu_is_refused_by_validation(tmp_path, tiny_checkpoint):
    path = write_experiment(
        tmp_path / "fp16.toml",
        tiny_checkpoint,
        None,
        dataset={"path": "./no-such-dataset"},
        hardware={"device": "cpu", "precision": "fp16"},
    )
    with pytest.raises(ExperimentError) as caught:
        run(path)
    assert [(p.section, p.key) for p in caught.value.problems] == [("dataset", "path"), ("hardware", "precision")]


def test_cuda_without_a_gpu_is_refused_before_any_data_is_loaded(tmp_path, tiny_checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = write_experiment(
        tmp_path / "cuda.toml",
        tiny_checkpoint,
        None,
        dataset={"path": "no-such-org/no-such-dataset"},
        hardware={"device": "cuda"},
    )
    with pytest.raises(ExperimentError) as caught:
        run(path)
    [problem] = caught.value.problems
    assert (problem.section, problem.key) == ("hardware", "device")
    assert "CUDA" in problem.message


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"dataset": {"text_columns": ["sentence1", "sentence3"]}}, ("dataset", "text_columns")),
        ({"model": {"num_labels": 3}}, ("model", "num_labels")),
        pytest.param({"model": {"checkpoint": "./no-such-checkpoint"}}, ("model", "checkpoint")),
    ],
    ids=["text_column", "num_labels", "checkpoint"],
)
def test_build_errors_are_located_at_the_key_to_fix(tmp_path, tiny_checkpoint, data, changes, where):
    path = write_experiment(tmp_path / "bad.toml", tiny_checkpoint, data, **changes)
    with pytest.raises(ExperimentError) as caught:
        run(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.section, problem.key) == (str(path), *where)


def test_xp_run_reports_invalid_files_and_runs_none(tmp_path, tiny_checkpoint, data):
    files = {
        "fp16.toml": {"hardware": {"device": "cpu", "precision": "fp16"}},
        "checkpoint.toml": {"model": {"checkpoint": "./no-such-checkpoint"}},
        "good.toml": {"runner": {"max_steps": 2}},
    }
    for name, changes in files.items():
        write_experiment(tmp_path / name, tiny_checkpoint, data, **changes)
    done = xp("run", *files, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    for line in (
        "fp16.toml: [hardware] precision: ",
        '] checkpoint: checkpoint folder "./no-such-checkpoint"',
        "2 of 3 experiment file(s) invalid; nothing was run.",
    ):
        assert line in done.stderr
    assert not (tmp_path / "outputs").exists()


def test_xp_run_reports_experiments_the_data_rejects_with_exit_code_2(tmp_path, tiny_checkpoint, data):
    files = {
        "text_column.toml": {"dataset": {"text_columns": ["sentence1", "sentence3"]}},
        "num_labels.toml": {"model": {"num_labels": 3}},
    }
    for name, changes in files.items():
        write_experiment(tmp_path / name, tiny_checkpoint, data, **changes)
    done = xp("run", *files, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    for line in ("text_column.toml: [dataset] text_columns: ", "num_labels.toml: [model] num_labels: "):
        assert line in done.stderr
    assert [row[2] for row in table_rows(done.stdout)] == ["invalid"] * 2


BOOM_METRIC = """\
import datasets
import evaluate


class Boom(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description="", citation="", inputs_description="", features=datasets.Features(
            {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}))

    def _compute(self, predictions, references):
        raise RuntimeError("the metric script broke")
"""


def test_xp_run_runs_every_experiment_and_summarizes_their_fates(tmp_path, tiny_checkpoint, data):
    # A crash at run time: a metric script (allowed with --allow-code) that fails at the first evaluation.
    (tmp_path / "boom.py").write_text(BOOM_METRIC)
    write_experiment(
        tmp_path / "crashing.toml",
        tiny_checkpoint,
        data,
        metrics={"use": "evaluate", "evaluate": {"path": "./boom.py"}},
    )
    write_experiment(tmp_path / "bad_at_build.toml", tiny_checkpoint, data, model={"num_labels": 3})
    write_experiment(tmp_path / "good.toml", tiny_checkpoint, data, runner={"max_steps": 2})
    done = xp("run", "--allow-code", "crashing.toml", "bad_at_build.toml", "good.toml", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-4000:]
    assert [(row[0], row[2]) for row in table_rows(done.stdout)] == [
        ("crashing.toml", "failed"),
        ("bad_at_build.toml", "invalid"),
        ("good.toml", "finished"),
    ]
    assert "crashing.toml: failed: RuntimeError: the metric script broke" in done.stderr
    assert "bad_at_build.toml: [model] num_labels: num_labels = 3" in done.stderr
