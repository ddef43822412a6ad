"""`xp sweep`: a hyperparameter study of real trials. Each trial is a real trial process and a real
MLflow run nested under the study's run; the Optuna study lives in a real SQLite database beside
the MLflow store; interruptions are real signals."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import DATA, xp_command

STUDY = "study"


def sweep_file(
    folder: Path,
    checkpoint: Path,
    space: dict,
    epochs: int = 2,
    saves_every: int | None = None,
    sections: dict | None = None,
    **sweep,
) -> Path:
    """The tiny BERT on 32 rows (4 steps an epoch), tracked into `folder`'s store, with a study
    named "study" over `space`; a checkpoint every `saves_every` steps; more `sections`."""
    return write_experiment(
        folder / "sweep.toml",
        checkpoint,
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        dataset={"max_rows": {"train": 32, "eval": 16}},
        runner={"num_epochs": epochs, "metric_for_best": "f1"},
        tracking={"enabled": True, "uri": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}", "system_metrics": False},
        sweep={"method": "grid", "study": STUDY, **sweep, "space": space},
        **({"checkpoint": {"every_steps": saves_every}} if saves_every else {}),
        **(sections or {}),
    )


def xp(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=timeout)


def store(folder: Path):
    from tracker.stores import open_store_for_runs

    # under xp's lock: a sweep may be creating the store's tables at this moment
    return open_store_for_runs(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")


def study(folder: Path):
    import optuna

    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{folder / 'mlruns' / 'optuna.db'}")


def sweep_runs(folder: Path) -> tuple[object, list]:
    """The study's parent run and its trials' runs, oldest first."""
    client = store(folder)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time ASC"])
    [parent] = [run for run in runs if run.data.tags.get("xp.sweep") == "parent"]
    trials = [run for run in runs if run.data.tags.get("xp.sweep") == "trial"]
    return parent, trials


def states(trials) -> list[str]:
    from tracker.sweep.study import state_of

    return [state_of(trial) for trial in trials]


def long_only(learning_rates: list[float], long: float) -> list[dict]:
    """A grid of learning rates (keys that vary together) in which only the trial that a test
    stops or kills trains long enough (40 epochs) to be caught running; the others take 2."""
    return [{"optimizer.lr": lr, "runner.num_epochs": 40 if lr == long else 2} for lr in learning_rates]


def started_trial(folder: Path, process: subprocess.Popen, number: int, timeout: float = 240) -> None:
    """Wait until trial `number`'s run exists and has logged a training step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before the trial started"
        if (folder / "mlruns" / "mlflow.db").exists():
            client = store(folder)
            runs = client.search_runs(
                [e.experiment_id for e in client.search_experiments()], f"tags.`xp.sweep.trial` = '{number}'"
            )
            if runs and client.get_metric_history(runs[0].info.run_id, "train/loss"):
                return
        time.sleep(0.2)
    raise AssertionError(f"trial {number} did not start within {timeout}s")


def test_a_grid_of_two_learning_rates_is_a_parent_run_with_two_nested_trial_runs_and_a_second_sweep_adds_none(
    tmp_path, tiny_checkpoint
):
    file = sweep_file(tmp_path, tiny_checkpoint, {"optimizer.lr": [1e-4, 1e-3]})

    first = xp(tmp_path, "sweep", str(file))

    assert first.returncode == 0, first.stderr[-3000:]
    parent, trials = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert [run.data.tags["mlflow.parentRunId"] for run in trials] == [parent.info.run_id] * 2
    assert sorted(float(run.data.params["optimizer.lr"]) for run in trials) == [1e-4, 1e-3]
    assert {run.info.status for run in trials} == {"FINISHED"}
    assert {run.data.tags["xp.sweep.state"] for run in trials} == {"COMPLETE"}
    assert sorted(run.data.tags["xp.sweep.trial"] for run in trials) == ["0", "1"]
    client = store(tmp_path)
    assert all(len(client.get_metric_history(run.info.run_id, "train/loss")) == 8 for run in trials)
    # the parent: the study's settings and space, the best trial, a table and Optuna's plots
    assert parent.data.params["sweep.method"] == "grid" and parent.data.params["sweep.metric"] == "eval_f1"
    assert parent.data.params["space.optimizer.lr"] == "0.0001 | 0.001"
    optuna_study = study(tmp_path)
    best = optuna_study.best_trial
    assert parent.data.params["best.optimizer.lr"] == str(best.params["optimizer.lr"])
    assert parent.data.metrics["best/f1"] == pytest.approx(best.value)
    assert parent.data.tags["xp.sweep.best_run"] == best.user_attrs["xp.run_id"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"trials.csv", "plots", "config", "sweep"} <= artifacts
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} >= {
        "plots/optimization_history.png",
        "plots/parallel_coordinate.png",
    }
    table = Path(client.download_artifacts(parent.info.run_id, "trials.csv", str(tmp_path))).read_text()
    assert table.splitlines()[0].startswith("trial,state,eval_f1,optimizer.lr")
    assert len(table.splitlines()) == 3
    # Optuna and MLflow agree trial by trial
    assert states(optuna_study.trials) == ["COMPLETE", "COMPLETE"]
    assert {t.user_attrs["xp.run_id"] for t in optuna_study.trials} == {run.info.run_id for run in trials}
    assert "complete" in first.stdout and "best" in first.stderr

    again = xp(tmp_path, "sweep", str(file))

    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to run" in again.stderr
    assert sweep_runs(tmp_path)[0].info.run_id == parent.info.run_id
    assert len(sweep_runs(tmp_path)[1]) == 2
    assert len(study(tmp_path).trials) == 2


def test_keys_that_vary_together_are_one_choice_of_the_study_and_each_trial_sets_its_table(tmp_path, tiny_checkpoint):
    # eval_steps means something only with eval_strategy = "steps": the two vary together
    tables = [{"runner.eval_strategy": "steps", "runner.eval_steps": 2}, {"runner.eval_strategy": "epoch"}]
    file = sweep_file(tmp_path, tiny_checkpoint, {"evaluation": tables})

    result = xp(tmp_path, "sweep", str(file))

    assert result.returncode == 0, result.stderr[-3000:]
    assert states(study(tmp_path).trials) == ["COMPLETE", "COMPLETE"]
    assert [t.params["evaluation"] for t in study(tmp_path).trials] == [
        'runner.eval_strategy="steps", runner.eval_steps=2',
        'runner.eval_strategy="epoch"',
    ]
    parent, (by_steps, by_epoch) = sweep_runs(tmp_path)
    assert (by_steps.data.params["runner.eval_strategy"], by_steps.data.params["runner.eval_steps"]) == ("steps", "2")
    assert by_epoch.data.params["runner.eval_strategy"] == "epoch"
    client = store(tmp_path)
    evaluations = [len(client.get_metric_history(run.info.run_id, "eval/f1")) for run in (by_steps, by_epoch)]
    assert evaluations == [4, 2]  # 8 steps: every 2nd step, or at each of the 2 epochs
    assert parent.data.params["space.evaluation"] == (
        '{ runner.eval_strategy = "steps", runner.eval_steps = 2 } | { runner.eval_strategy = "epoch" }'
    )


def test_a_sampled_combination_that_makes_an_invalid_experiment_is_recorded_invalid_without_a_run(
    tmp_path, tiny_checkpoint
):
    # Each value is fine alone, so the file is valid; a sample of "no" with a patience is not.
    space = {"runner.eval_strategy": ["epoch", "no"], "runner.early_stopping_patience": [2]}
    file = sweep_file(tmp_path, tiny_checkpoint, space, epochs=1, method="random", trials=4, seed=3)

    result = xp(tmp_path, "sweep", str(file))

    assert result.returncode == 0, result.stderr[-3000:]
    trials = study(tmp_path).trials
    invalid = [t for t in trials if t.params["runner.eval_strategy"] == "no"]
    assert invalid and len(invalid) < len(trials)  # this seed samples both
    assert states(trials) == ["INVALID" if t in invalid else "COMPLETE" for t in trials]
    assert {t.state.name for t in invalid} == {"FAIL"}  # to Optuna, a failure
    assert {t.user_attrs["xp.invalid"] for t in invalid} == {
        '[runner] early_stopping_patience: early stopping needs evaluations; set eval_strategy to "epoch" or "steps"'
    }
    assert "invalid: its values make an experiment that fails the checks" in result.stderr
    assert " invalid " in result.stdout  # the trials table
    _, runs = sweep_runs(tmp_path)
    assert len(runs) == len(trials) - len(invalid)  # no run for an experiment that cannot run


def test_a_bad_space_exits_2_with_every_problem_before_any_trial(tmp_path, tiny_checkpoint):
    file = sweep_file(
        tmp_path,
        tiny_checkpoint,
        {"optimizer.lrr": [1e-4], "runner.batch_size": [0, 8], "model.checkpoint": {"low": 1, "high": 2}},
    )

    result = xp(tmp_path, "sweep", str(file))

    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if "[sweep.space]" in line]
    assert len(problems) == 3, result.stderr
    assert '"optimizer.lrr": 0.0001: [optimizer] lrr: unknown key (did you mean "lr"?)' in result.stderr
    assert '"runner.batch_size": 0: [runner] batch_size: expected an integer >= 1, got 0' in result.stderr
    assert '"model.checkpoint": a range needs a number key' in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "outputs").exists()


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, tiny_checkpoint):
    file = sweep_file(tmp_path, tiny_checkpoint, {"optimizer.lr": [1e-4, 1e-3], "runner.batch_size": [4, 8]}, epochs=3)

    result = xp(tmp_path, "sweep", str(file), "--dry-run", "--set", "runner.gradient_accumulation_steps=2")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "grid, 4 trials" in result.stdout and "32 training rows" in result.stdout
    assert "optimizer.lr                 0.0001 | 0.001" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line[:1].isdigit()]
    # 32 rows: batch 4 makes 8 batches, 4 optimizer steps an epoch with accumulation 2; batch 8 half
    assert [(row[-2], row[-1]) for row in rows] == [("8", "12"), ("16", "6"), ("8", "12"), ("16", "6")]
    assert not (tmp_path / "mlruns").exists()


def test_pruned_trials_stop_early_and_are_recorded_as_pruned(tmp_path, tiny_checkpoint):
    # A learning rate of 0.5 sends the validation loss far above the first trial's at the first
    # evaluation: below the median of the trials before it, so the median pruner stops it there.
    file = sweep_file(
        tmp_path,
        tiny_checkpoint,
        {"optimizer.lr": [1e-3, 0.5]},
        epochs=4,
        metric="loss",
        pruner="median",
        pruner_startup_trials=1,
    )

    result = xp(tmp_path, "sweep", str(file))

    assert result.returncode == 0, result.stderr[-3000:]
    assert states(study(tmp_path).trials) == ["COMPLETE", "PRUNED"]
    parent, (complete, pruned) = sweep_runs(tmp_path)
    assert pruned.data.tags["xp.sweep.state"] == "PRUNED" and pruned.info.status == "FINISHED"
    client = store(tmp_path)
    assert [p.step for p in client.get_metric_history(pruned.info.run_id, "eval/loss")] == [4]
    assert len(client.get_metric_history(pruned.info.run_id, "train/loss")) == 4
    assert len(client.get_metric_history(complete.info.run_id, "train/loss")) == 16
    assert parent.data.tags["xp.sweep.trials"] == "1 complete, 1 pruned, 0 fail"
    assert "pruned" in result.stderr


def test_a_failing_trial_is_recorded_with_its_reason_and_the_study_goes_on(tmp_path, tiny_checkpoint):
    broken = tmp_path / "not-a-model"
    broken.mkdir()  # a folder passes every check of the file; loading a model from it fails
    file = sweep_file(tmp_path, tiny_checkpoint, {"model.checkpoint": [str(broken), str(tiny_checkpoint)]})

    result = xp(tmp_path, "sweep", str(file))

    assert result.returncode == 0, result.stderr[-3000:]
    failed, complete = study(tmp_path).trials
    assert (failed.state.name, complete.state.name) == ("FAIL", "COMPLETE")
    assert "not-a-model" in failed.user_attrs["xp.error"]
    assert "failed:" in result.stderr
    parent, runs = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert [run.info.status for run in runs] == ["FINISHED"]  # the failing trial failed before its run started


def test_a_trial_killed_like_out_of_memory_fails_with_the_reason_and_the_study_goes_on(tmp_path, tiny_checkpoint):
    file = sweep_file(tmp_path, tiny_checkpoint, {"trial": long_only([1e-4, 1e-3], long=1e-4)})
    log = (tmp_path / "sweep.log").open("w")
    process = subprocess.Popen(xp_command("sweep", str(file)), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        started_trial(tmp_path, process, 0)
        # the kernel's OOM killer sends SIGKILL to the trial's process, and to nothing else
        trial_pid = subprocess.run(
            ["pgrep", "-P", str(process.pid), "-f", "tracker.sweep.trial"], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        subprocess.run(["kill", "-KILL", trial_pid], check=True)
        code = process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()

    assert code == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    killed, complete = study(tmp_path).trials
    assert (killed.state.name, complete.state.name) == ("FAIL", "COMPLETE")
    assert killed.user_attrs["xp.error"] == "the trial process was killed by SIGKILL (out of memory?)"
    parent, (killed_run, complete_run) = sweep_runs(tmp_path)
    assert killed_run.info.status == "FAILED" and killed_run.data.tags["xp.sweep.state"] == "FAIL"
    assert complete_run.info.status == "FINISHED" and parent.info.status == "FINISHED"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_sweep_continues_with_its_remaining_trials_in_the_same_parent_run(
    tmp_path, tiny_checkpoint, stop
):
    file = sweep_file(tmp_path, tiny_checkpoint, {"trial": long_only([1e-4, 3e-4, 1e-3], long=3e-4)})
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(xp_command("sweep", str(file)), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        started_trial(tmp_path, process, 1)
        process.send_signal(stop)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    first_parent, _ = sweep_runs(tmp_path)
    if stop == signal.SIGINT:  # stopped cleanly: the trial's run and the study's run end KILLED
        assert code == 130, (tmp_path / "first.log").read_text()[-3000:]
        assert first_parent.info.status == "KILLED"
        assert states(study(tmp_path).trials) == ["COMPLETE", "INTERRUPTED"]
    time.sleep(2)  # a trial whose sweep was killed notices within a second and ends its run
    assert [run.info.status for run in sweep_runs(tmp_path)[1]] == ["FINISHED", "KILLED"]

    result = xp(tmp_path, "sweep", str(file))

    assert result.returncode == 0, result.stderr[-3000:]
    parent, runs = sweep_runs(tmp_path)
    assert parent.info.run_id == first_parent.info.run_id and parent.info.status == "FINISHED"
    trials = study(tmp_path).trials
    assert states(trials) == ["COMPLETE", "INTERRUPTED", "COMPLETE", "COMPLETE"]
    # every point of the grid ran to the end exactly once; the interrupted one was run again
    finished = [run for run in runs if run.info.status == "FINISHED"]
    assert sorted(float(run.data.params["optimizer.lr"]) for run in finished) == [1e-4, 3e-4, 1e-3]
    assert trials[1].params == trials[2].params
    killed = [run for run in runs if run.info.status == "KILLED"]
    assert len(killed) == 1 and killed[0].data.tags["xp.sweep.state"] == "INTERRUPTED"
    assert "1 of 3 trials done; 2 to run" in result.stderr


def test_an_interrupted_trial_that_saved_a_checkpoint_continues_from_it_in_the_same_run(tmp_path, tiny_checkpoint):
    file = sweep_file(tmp_path, tiny_checkpoint, {"optimizer.lr": [1e-3]}, epochs=40, saves_every=20)
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(xp_command("sweep", str(file)), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob("outputs/*/checkpoints/*/*/xp-checkpoint.json")):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert code == 130, (tmp_path / "first.log").read_text()[-3000:]
    [stopped] = sweep_runs(tmp_path)[1]
    assert stopped.info.status == "KILLED"

    result = xp(tmp_path, "sweep", str(file))

    assert result.returncode == 0, result.stderr[-3000:]
    parent, [run] = sweep_runs(tmp_path)  # no second run: the trial went on in the one it had
    assert run.info.run_id == stopped.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["xp.attempt"] == "2" and run.data.tags["xp.sweep.trial"] == "1"
    assert run.data.tags["xp.sweep.state"] == "COMPLETE" and parent.info.status == "FINISHED"
    interrupted, continued = study(tmp_path).trials
    assert states([interrupted, continued]) == ["INTERRUPTED", "COMPLETE"]
    assert interrupted.user_attrs["xp.run_id"] == continued.user_attrs["xp.run_id"] == run.info.run_id
    assert continued.user_attrs["xp.continues"] == run.info.run_id
    # every one of the 160 steps logged once: from the checkpoint on, not from the start again
    steps = [point.step for point in store(tmp_path).get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(steps) == list(range(1, 161))
    assert "continues the run of the interrupted trial" in result.stderr


def test_two_sweeps_on_one_study_share_its_trials(tmp_path, tiny_checkpoint):
    file = sweep_file(
        tmp_path, tiny_checkpoint, {"optimizer.lr": {"low": 1e-5, "high": 1e-2, "log": True}}, method="random", trials=4
    )
    logs = [(tmp_path / f"sweep-{index}.log").open("w") for index in range(2)]
    processes = [
        subprocess.Popen(xp_command("sweep", str(file), *extra), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        for log, extra in zip(logs, [("--set", "sweep.parallel=2"), ()], strict=True)
    ]
    codes = [process.wait(timeout=600) for process in processes]
    for log in logs:
        log.close()

    assert codes == [0, 0], [path.read_text()[-2000:] for path in tmp_path.glob("sweep-*.log")]
    trials = study(tmp_path).trials
    assert states(trials) == ["COMPLETE"] * 4  # four trials in all, never more
    assert len({t.params["optimizer.lr"] for t in trials}) == 4
    parent, runs = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert len(runs) == 4 and {run.data.tags["mlflow.parentRunId"] for run in runs} == {parent.info.run_id}
    # trials side by side write their console to a file each
    assert list((tmp_path / "outputs" / STUDY).glob("trial-*.log"))
