"""The learning-curve diagnosis of real runs: the loop and trainer runners hand the recipe curves of
the same shape, the verdict is a function of those curves, the predictions and the data only, and
short runs of the tiny BERT built to overfit, to underfit and to collapse get the verdicts they
were built for, with the numbers behind them in the reason.

All runs use 16 training and 16 validation rows of experiments/data/paraphrase in batches of 4
(4 optimizer steps an epoch), evaluating after every epoch; the validation rows are 9 "different"
and 7 "paraphrase", close enough to balanced that one class for every row is degenerate.
"""

from __future__ import annotations

import csv

import pytest

from tests.experiment_files import write_experiment
from tests.plugins.paraphrase_splits import PARAPHRASE, write_split
from tests.plugins.test_runners import run
from tracker.diagnosis import Curves, Evidence, diagnose
from tracker.diagnosis.baseline import trivial_scores
from tracker.registry import load_registry

RUNNERS = ("loop", "trainer")
EVERY_EPOCH = {"batch_size": 4, "eval_strategy": "steps", "eval_steps": 4}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread does each of these small runs in about a second; on a busy machine more threads
    only wait for each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> dict[str, str]:
    """16 training rows (10 "paraphrase"), 16 validation rows (9 "different")."""
    with PARAPHRASE.open(encoding="utf-8") as file:
        paraphrase_rows = list(csv.DictReader(file))
    folder = tmp_path_factory.mktemp("small")
    return {
        "train": write_split(folder / "train.csv", paraphrase_rows[:16]),
        "validation": write_split(folder / "validation.csv", paraphrase_rows[24:40]),
    }


def run_tiny(folder, checkpoint, data, runner: str, lr: float, epochs: int, scheduler: str = "linear"):
    path = write_experiment(
        folder / f"{runner}.toml",
        checkpoint,
        data,
        optimizer={"lr": lr},
        scheduler={"use": scheduler},
        runner={"use": runner, "num_epochs": epochs, **EVERY_EPOCH},
    )
    return run(path)


@pytest.fixture(scope="module")
def overfit(tmp_path_factory, tiny_checkpoint, small_data):
    """Built to overfit: 16 rows for 12 epochs (48 steps) at a constant 3e-3. The training loss
    falls towards 0 as the rows are memorized, and the validation loss climbs far above its best."""
    return {
        runner: run_tiny(
            tmp_path_factory.mktemp(f"overfit-{runner}"),
            tiny_checkpoint,
            small_data,
            runner,
            lr=3e-3,
            epochs=12,
            scheduler="constant",
        )
        for runner in RUNNERS
    }


def evidence_of(result, data) -> Evidence:
    """What the diagnosis reads, made here from the run's curves and predictions and the data."""
    registry = load_registry()
    task = registry.get("dataset", "hf").factory(
        registry.get("task", "sequence_classification").factory(),
        0,
        path="csv",
        data_files=data,
        text_columns=["sentence1", "sentence2"],
    )
    metrics = [registry.get("metric", name).factory(task) for name in ("accuracy", "f1")]
    trivial = task.task.baseline(task)
    baseline, directions = trivial_scores(trivial.predictions, task.splits["eval"]["label"], metrics)
    return Evidence(
        result.curves, result.predictions, baseline, task.task.label_names, directions, trivial=trivial.described
    )


# -- the same evidence from every runner -------------------------------------------------------


def test_both_runners_hand_back_curves_of_the_same_shape(overfit):
    shapes = []
    for runner in RUNNERS:
        result, _ = overfit[runner]
        curves = result.curves
        assert isinstance(curves, Curves), runner
        shapes.append(
            (
                [step for step, _ in curves.train_loss],
                [step for step, _ in curves.evaluations],
                curves.metric_names(),
                [set(metrics) - {"epoch"} for _, metrics in curves.evaluations],
            )
        )
        assert result.predictions.class_shares is not None and result.predictions.label_shares is not None
    assert shapes[0] == shapes[1]
    train_steps, eval_steps, names, evaluated = shapes[0]
    assert train_steps == list(range(1, 49))
    assert eval_steps == list(range(4, 49, 4))
    assert names == ["eval_accuracy", "eval_f1"]
    assert all(metrics == {"eval_loss", "eval_accuracy", "eval_f1"} for metrics in evaluated)
    # Both runners describe the same validation rows: 9 "different", 7 "paraphrase".
    for runner in RUNNERS:
        assert overfit[runner][0].predictions.label_shares == pytest.approx((9 / 16, 7 / 16)), runner


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_verdict_is_a_function_of_the_evidence_only(overfit, small_data, runner):
    result, _ = overfit[runner]
    assert diagnose(evidence_of(result, small_data)) == result.diagnosis


def test_the_same_curves_get_the_same_verdict_whatever_runner_made_them(overfit, small_data):
    # The loop's evidence, said to come from the trainer run, still gets the loop's verdict.
    loop, trainer = overfit["loop"][0], overfit["trainer"][0]
    trainer_evidence = evidence_of(trainer, small_data)
    swapped = Evidence(
        loop.curves,
        loop.predictions,
        trainer_evidence.baseline,
        trainer_evidence.label_names,
        trainer_evidence.higher_is_better,
        trainer_evidence.trivial,
    )
    assert diagnose(swapped) == loop.diagnosis


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_diagnosis_shows_as_tags_and_a_text_artifact(overfit, runner):
    result, logger = overfit[runner]
    diagnosis = result.diagnosis
    assert logger.tags["xp.diagnosis"] == diagnosis.verdict
    assert logger.tags["xp.diagnosis.reason"] == diagnosis.reason
    assert logger.tags["xp.diagnosis.suggestion"] == diagnosis.suggestion
    assert logger.tags["xp.diagnosis.explanation"] == diagnosis.explanation
    assert logger.tags["xp.diagnosis.since_step"] == str(diagnosis.since_step)
    logged = [path for path in logger.artifacts if path.name == "diagnosis.txt"]
    assert len(logged) == 1
    text = logged[0].read_text(encoding="utf-8")
    assert text.startswith(f"verdict:    {diagnosis.verdict}\n")
    assert f"reason:     {diagnosis.reason}\n" in text
    # The training split is 10 "paraphrase" of 16; on the validation rows (7 of 16) that scores 0.4375.
    assert 'trivial baseline (always "paraphrase"): eval/accuracy 0.4375, eval/f1 0.6087' in text
    assert "evaluations: 12, training-loss logs: 48" in text


# -- runs built for a verdict ------------------------------------------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_run_built_to_overfit_is_overfitting_from_its_best_evaluation(overfit, runner):
    result, _ = overfit[runner]
    diagnosis = result.diagnosis
    eval_loss = result.curves.eval_loss
    best_step, best = min(eval_loss, key=lambda point: point[1])
    last_step, last = eval_loss[-1]
    assert last > 2 * best  # what the run was built for: validation loss far above its best...
    train = [value for _, value in result.curves.train_loss]
    assert max(train[-4:]) < 0.2 < min(train[:4])  # ...while the training rows are memorized
    assert diagnosis.verdict == "overfitting", diagnosis.reason
    assert diagnosis.since_step == best_step
    assert f"best {best:.3f} (step {best_step}) to {last:.3f} (step {last_step})" in diagnosis.reason
    assert f"stop around step {best_step}" in diagnosis.suggestion


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_run_with_a_learning_rate_near_zero_is_underfitting(tmp_path, tiny_checkpoint, small_data, runner):
    """At lr 1e-9 nothing moves: the training loss stays at ln 2 and the untrained tiny BERT, like
    any random initialization tried, gives every validation row the same class. A model still at
    its initial weights is underfitting (raise the learning rate), not a collapse."""
    result, logger = run_tiny(tmp_path, tiny_checkpoint, small_data, runner, lr=1e-9, epochs=4)
    diagnosis, stats = result.diagnosis, result.predictions
    top = max(range(2), key=lambda k: stats.class_shares[k])
    assert stats.class_shares[top] == 1.0
    assert diagnosis.verdict == "underfitting", diagnosis.reason
    start, end = diagnosis.numbers["train_start"], diagnosis.numbers["train_end"]
    assert start == pytest.approx(0.693, abs=0.01) and end == pytest.approx(0.693, abs=0.01)
    label = ("different", "paraphrase")[top]
    assert diagnosis.reason.startswith(f"the training loss barely fell ({start:.3f} to {end:.3f}")
    assert diagnosis.reason.endswith(f'and it predicts "{label}" for 100.0% of the validation rows')
    assert "raise the learning rate" in diagnosis.suggestion
    assert logger.tags["xp.diagnosis"] == "underfitting"


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_run_with_a_huge_learning_rate_collapses_to_one_class(tmp_path, tiny_checkpoint, small_data, runner):
    """At a constant lr of 1 the training loss jumps from ln 2 to tens, and the model ends up
    giving every validation row the same class: not learning, which is checked before unstable."""
    result, logger = run_tiny(tmp_path, tiny_checkpoint, small_data, runner, lr=1.0, epochs=4, scheduler="constant")
    diagnosis, stats = result.diagnosis, result.predictions
    train = [value for _, value in result.curves.train_loss]
    assert max(train) > 10 * train[0]
    assert diagnosis.verdict == "not_learning", diagnosis.reason
    top = max(range(2), key=lambda k: stats.class_shares[k])
    label = ("different", "paraphrase")[top]
    assert diagnosis.reason == (
        f'the model predicts "{label}" for 100.0% of the validation rows, which have '
        f"{stats.label_shares[top]:.1%} of it"
    )
    assert "lower the learning rate if the loss jumped" in diagnosis.suggestion
    assert logger.tags["xp.diagnosis"] == "not_learning"
    # The curves alone show the jump.
    curves_only = diagnose(Evidence(result.curves))
    assert curves_only.verdict == "unstable"
    assert f"jumped to {curves_only.numbers['spike']:.3f}" in curves_only.reason
