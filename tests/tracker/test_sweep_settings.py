"""The settings of a study, resolved from [sweep] and the experiment: metric and direction, seed,
trials, the study's name (what identifies a study) and where it is stored."""

from __future__ import annotations

import re

import pytest

import tracker
from tests.tracker.test_sweep_space import BASE, URI, VALID_SPACE, with_runner, with_sweep, write
from tests.tracker.test_validate import edit
from tracker.sweep.study import default_storage, sweep_settings

# --- the settings of a study -------------------------------------------------------------------


def settings_of(registry, folder, text: str, uri: str = URI, name: str = "mrpc_sweep.toml"):
    experiment = tracker.load(write(folder, text, name), registry=registry)
    return sweep_settings(experiment, uri)


def test_settings_default_to_the_runners_metric_and_the_experiments_seed(registry, tmp_path):
    base = "[experiment]\nseed = 7\n\n" + with_runner('metric_for_best = "f1"')

    settings = settings_of(registry, tmp_path, with_sweep('"optimizer.lr" = [1e-5, 3e-5]', base=base))

    assert (settings.method, settings.trials, settings.seed) == ("tpe", 12, 7)
    assert (settings.metric, settings.direction) == ("eval_f1", "maximize")
    assert (settings.parallel, settings.pruner, settings.pruner_startup_trials) == (1, "none", 5)


@pytest.mark.parametrize(
    ("runner_lines", "sweep", "metric", "direction"),
    [
        ((), "trials = 3", "eval_loss", "minimize"),
        (('metric_for_best = "loss"',), "trials = 3", "eval_loss", "minimize"),
        (('metric_for_best = "eval/f1"',), "trials = 3", "eval_f1", "maximize"),
        (('metric_for_best = "f1"',), 'trials = 3\nmetric = "accuracy"', "eval_accuracy", "maximize"),
        (('metric_for_best = "f1"',), 'trials = 3\nmetric = "loss"', "eval_loss", "minimize"),
        (('metric_for_best = "f1"',), 'trials = 3\ndirection = "minimize"', "eval_f1", "minimize"),
    ],
)
def test_the_metric_and_its_direction(registry, tmp_path, runner_lines, sweep, metric, direction):
    text = with_sweep('"optimizer.lr" = [1e-5, 3e-5]', sweep=sweep, base=with_runner(*runner_lines))

    settings = settings_of(registry, tmp_path, text)

    assert (settings.metric, settings.direction) == (metric, direction)


def test_the_sweeps_own_seed_wins(registry, tmp_path):
    text = with_sweep('"optimizer.lr" = [1e-5, 3e-5]', sweep="trials = 3\nseed = 11")

    assert settings_of(registry, tmp_path, text).seed == 11


def test_a_grid_runs_each_of_its_points(registry, tmp_path):
    text = with_sweep(
        '"scheduler.use" = ["linear", "cosine"]\n"scheduler.num_cycles" = [0.5, 1.0]', sweep='method = "grid"'
    )

    assert settings_of(registry, tmp_path, text).trials == 3


def test_the_study_is_named_after_the_file_and_a_hash(registry, tmp_path):
    text = with_sweep(VALID_SPACE)

    first = settings_of(registry, tmp_path / "a", text)
    again = settings_of(registry, tmp_path / "b", text)

    assert re.fullmatch(r"mrpc_sweep-[0-9a-f]{8}", first.study)
    assert again.study == first.study


@pytest.mark.parametrize(
    "sweep", ["trials = 40", "trials = 12\nparallel = 4", 'trials = 12\npruner = "median"\npruner_startup_trials = 2']
)
def test_more_trials_or_processes_continue_the_same_study(registry, tmp_path, sweep):
    before = settings_of(registry, tmp_path / "before", with_sweep(VALID_SPACE))
    after = settings_of(registry, tmp_path / "after", with_sweep(VALID_SPACE, sweep=sweep))

    assert after.study == before.study


@pytest.mark.parametrize(
    ("space", "sweep", "base"),
    [
        pytest.param(VALID_SPACE.replace("high = 1e-3", "high = 1e-4"), "trials = 12", BASE, id="another-range"),
        pytest.param(VALID_SPACE + '"runner.batch_size" = [8, 16]\n', "trials = 12", BASE, id="another-key"),
        pytest.param(VALID_SPACE, 'trials = 12\nmethod = "random"', BASE, id="another-method"),
        pytest.param(VALID_SPACE, "trials = 12\nseed = 3", BASE, id="another-seed"),
        pytest.param(VALID_SPACE, 'trials = 12\nmetric = "accuracy"', BASE, id="another-metric"),
        pytest.param(
            VALID_SPACE,
            "trials = 12",
            edit(BASE, "lr = 5e-5", "lr = 5e-5\nweight_decay = 0.01"),
            id="another-experiment",
        ),
    ],
)
def test_another_space_or_experiment_is_another_study(registry, tmp_path, space, sweep, base):
    before = settings_of(registry, tmp_path / "before", with_sweep(VALID_SPACE))
    after = settings_of(registry, tmp_path / "after", with_sweep(space, sweep=sweep, base=base))

    assert after.study != before.study


def test_an_explicit_study_name_and_storage_are_kept(registry, tmp_path):
    text = with_sweep(VALID_SPACE, sweep='trials = 12\nstudy = "lr-search"\nstorage = "postgresql://db/optuna"')

    settings = settings_of(registry, tmp_path, text)

    assert (settings.study, settings.storage) == ("lr-search", "postgresql://db/optuna")


def test_the_study_lives_next_to_a_local_mlflow_store(registry, tmp_path):
    store = tmp_path / "mlruns" / "mlflow.db"

    settings = settings_of(registry, tmp_path, with_sweep(VALID_SPACE), uri=f"sqlite:///{store}")

    assert settings.storage == f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    assert default_storage("sqlite:///mlruns/mlflow.db") == "sqlite:///mlruns/optuna.db"


def test_with_a_tracking_server_the_study_lives_in_mlruns():
    assert default_storage("http://mlflow.example:5000") == "sqlite:///mlruns/optuna.db"
