"""Issue 12, point 4: a console a person can read, and point 5's run tags and metric names.

`xp run` prints one line per phase (data, model, training with its progress bar, each evaluation
with its own bar), keeps the libraries' chatter (MLflow INFO lines, warnings, the transformers
load report, datasets' map bars) out of sight unless `-v`, never glues a line onto a progress bar,
and ends with where the run lives: run name and id, experiment, tracking URI, the command that
opens the UI and the run's URL in it, the model URI and the outputs folder. `-q` prints only that.

Real `xp run` processes on the tiny BERT (default, -q with each kind of runner, -v), each with
its own SQLite store in a temporary folder, run at once and are shared by the tests below.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.mlflow_helpers import QUICKSTART, as_set_options, quickstart_overrides, sqlite_store, xp_command

REGISTERED = "console-classifier"
# What `run_summary` labels its lines with, in order.
SUMMARY_LABELS = (
    "status",
    "result",
    "curves",
    "suggestion",
    "run",
    "experiment",
    "tracking",
    "open the UI",
    "model",
    "outputs",
)
SUMMARY_LABELS_LONGEST_FIRST = sorted(SUMMARY_LABELS, key=len, reverse=True)
PHASES = ("experiment", "data", "model", "training", "saving")
# The one bar training shows and the one each evaluation shows; any other bar is a library's.
OUR_BARS = ("train:", "evaluation:")
LIBRARY_CHATTER = (
    "Creating initial MLflow database tables",
    "INFO mlflow",
    "WARNING mlflow",  # MLflow's logging
    "Successfully registered model",
    "Created version",  # MLflow's registry, printed to stderr itself
    "Warning:",
    "warnings.warn",  # Python warnings (UserWarning: ..., FutureWarning: ...)
    "Loading weights",
    "LOAD REPORT",
    "newly initialized",
    "MISSING",
    "UNEXPECTED",  # transformers' load report
    "Tokenizing",
    "Map:",
    "Map (",
    "Generating",  # datasets' progress bars
)


@dataclass
class Run:
    """One finished `xp run` process and its store."""

    folder: Path
    store: str
    stdout: str
    stderr: str

    @property
    def chunks(self) -> list[str]:
        """What a terminal shows as separate lines: a progress bar redraws after each \\r."""
        return [chunk for chunk in re.split(r"[\r\n]", self.stderr) if chunk.strip()]

    def _summary_start(self) -> int:
        return max(i for i, chunk in enumerate(self.chunks) if chunk.startswith("status "))

    @property
    def summary(self) -> dict[str, str]:
        """The summary's lines by label: those from the last `status` line on."""
        found = {}
        for line in self.chunks[self._summary_start() :]:
            label = next((label for label in SUMMARY_LABELS_LONGEST_FIRST if line.startswith(f"{label} ")), None)
            assert label is not None, f"not a summary line: {line!r}"
            found[label] = line[len(label) :].strip()
        return found

    def phase_lines(self, phase: str) -> list[str]:
        """The lines before the summary that start with `phase`, padded to the phases' column."""
        return [chunk for chunk in self.chunks[: self._summary_start()] if re.match(rf"{phase} +\S", chunk)]

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.store)

    def only_run(self) -> Any:
        client = self.client()
        experiment = client.get_experiment_by_name("quickstart")
        [run] = client.search_runs([experiment.experiment_id])
        return run


def start(folder: Path, checkpoint: Path, *flags: str, overrides: tuple[str, ...] = ()) -> subprocess.Popen:
    """`xp run [flags] quickstart.toml` shrunk to the tiny model, in `folder`, with its store there.
    The file is named relative to `folder`, as a user in that folder would. The output goes to
    files (a pipe nobody reads while another run is awaited could fill and stall the run)."""
    options = as_set_options([*quickstart_overrides(checkpoint, folder, sqlite_store(folder)), *overrides])
    with (folder / "stdout.txt").open("w") as stdout, (folder / "stderr.txt").open("w") as stderr:
        return subprocess.Popen(
            xp_command("run", *flags, os.path.relpath(QUICKSTART, folder), *options),
            cwd=folder,
            stdout=stdout,
            stderr=stderr,
        )


def written(path: Path) -> str:
    """The file's text as written: reading in text mode would turn each \\r into \\n."""
    return path.read_bytes().decode()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_checkpoint) -> dict[str, Run]:
    """All at once (most of a run is start-up):
    - default: progress bars, a saved and registered model, system metrics, four steps with an
      evaluation after each epoch of two;
    - quiet (-q): into a store whose experiment was made earlier without the kind tag;
    - quiet-trainer (-q): the Trainer runner, which draws its own bars;
    - verbose (-v): into a fresh store, so MLflow has its database tables to create and says so.
    """
    from mlflow import MlflowClient

    folders = {
        name: tmp_path_factory.mktemp(f"console-{name}") for name in ("default", "quiet", "quiet-trainer", "verbose")
    }
    # Made by hand (or by an older xp), without the tag that opens the UI's classic view.
    MlflowClient(sqlite_store(folders["quiet"])).create_experiment(
        "quickstart", artifact_location=(folders["quiet"] / "mlruns").as_uri()
    )
    bars = "runner.progress_bar=true"
    processes = {
        "default": start(
            folders["default"],
            tiny_checkpoint,
            overrides=(
                bars,
                "runner.save_model=true",
                f'tracking.register_as="{REGISTERED}"',
                "tracking.system_metrics=true",
            ),
        ),
        "quiet": start(folders["quiet"], tiny_checkpoint, "-q", overrides=(bars, "runner.max_steps=2")),
        "quiet-trainer": start(
            folders["quiet-trainer"],
            tiny_checkpoint,
            "-q",
            overrides=(bars, 'runner.use="trainer"', "runner.max_steps=2"),
        ),
        "verbose": start(folders["verbose"], tiny_checkpoint, "-v", overrides=("runner.max_steps=2",)),
    }
    done = {}
    for name, process in processes.items():
        process.wait(timeout=300)
        folder = folders[name]
        stderr = written(folder / "stderr.txt")
        assert process.returncode == 0, f"xp run ({name}) failed:\n{stderr[-3000:]}"
        done[name] = Run(folder, sqlite_store(folder), written(folder / "stdout.txt"), stderr)
    return done


# ---- one line per phase --------------------------------------------------------------------------


def test_each_phase_has_one_line(runs):
    run = runs["default"]

    for phase in PHASES:
        assert len(run.phase_lines(phase)) == 1, f"{phase}: {run.phase_lines(phase)}\n{run.stderr}"
    [data] = run.phase_lines("data")
    assert "32 train, 16 eval rows" in data and "2 labels: different, paraphrase" in data
    [model] = run.phase_lines("model")
    assert model.endswith(", 995.6K parameters, 995.6K trained, on cpu in fp32")  # the tiny BERT, trained whole
    [training] = run.phase_lines("training")
    assert "4 optimizer steps" in training and "loop" in training
    # One line per evaluation: the quickstart evaluates after each epoch of two steps.
    evaluations = [chunk for chunk in run.chunks if chunk.startswith("evaluation step")]
    assert [line.split(":")[0] for line in evaluations] == ["evaluation step 2", "evaluation step 4"]
    assert all("accuracy" in line and "f1" in line for line in evaluations)


def test_training_and_each_evaluation_have_their_own_progress_bar(runs):
    chunks = runs["default"].chunks

    assert any(chunk.startswith("train:") and "4/4" in chunk for chunk in chunks)
    assert any(chunk.startswith("evaluation:") and "%|" in chunk for chunk in chunks)
    # The only bars are ours: no "Loading weights", "Map", "Downloading artifacts" bars.
    bars = [chunk for chunk in chunks if "%|" in chunk]
    assert all(chunk.lstrip().startswith(OUR_BARS) for chunk in bars), [
        c for c in bars if not c.lstrip().startswith(OUR_BARS)
    ]


def test_no_line_is_glued_to_a_progress_bar(runs):
    for chunk in runs["default"].chunks:
        if "%|" in chunk:
            # Our lines as they start: a phase padded to its column, an evaluation, the summary.
            for text in ("evaluation step", *(f"{phase:<11}" for phase in PHASES), "status  "):
                assert text not in chunk, f"{text!r} printed onto a progress bar: {chunk!r}"


def test_library_chatter_is_hidden(runs):
    stderr = runs["default"].stderr

    for chatter in LIBRARY_CHATTER:
        assert chatter not in stderr, f"{chatter!r} shown without -v"


# ---- the summary: where the run lives and how to look at it -------------------------------------


def test_the_summary_says_where_the_run_its_model_and_outputs_are(runs):
    run = runs["default"]
    stored = run.only_run()
    run_id, run_name, experiment_id = stored.info.run_id, stored.info.run_name, stored.info.experiment_id
    [logged] = run.client().search_logged_models(experiment_ids=[experiment_id])

    summary = run.summary

    assert summary["status"].startswith("finished in ")
    assert summary["run"] == f"{run_name} (id {run_id})"
    assert summary["experiment"] == f"quickstart (id {experiment_id})"
    assert summary["tracking"] == run.store
    command, url = summary["open the UI"].split(", then ")
    assert command.startswith("xp ui") and run.store in command
    # The link opens the classic machine-learning view, whatever the reader chose last.
    assert url == f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    assert summary["model"] == f"models:/{logged.model_id} (registered as {REGISTERED}/1)"
    assert summary["outputs"] == str(run.folder / "outputs" / run_name)
    assert (run.folder / "outputs" / run_name / "model").is_dir()
    # The final table is the command's output; its run id is the summary's, shortened.
    assert "finished" in run.stdout and run_id[:12] in run.stdout


@pytest.mark.parametrize(
    "name",
    [
        "quiet",
        "quiet-trainer",
    ],
)
def test_quiet_prints_only_the_summary_and_the_table(runs, name):
    run = runs[name]

    assert "\r" not in run.stderr, "a progress bar was drawn"
    assert run.chunks[0].startswith("status "), "lines before the summary:\n" + run.stderr
    assert len(run.chunks) == len(run.summary)  # and none after it
    assert list(run.summary) == [label for label in SUMMARY_LABELS if label in run.summary]
    assert {"status", "run", "experiment", "tracking", "open the UI"} <= set(run.summary)
    assert run.summary["run"].endswith(f"(id {run.only_run().info.run_id})")
    assert "finished" in run.stdout and "quickstart.toml" in run.stdout


def test_verbose_lets_the_libraries_speak(runs):
    stderr = runs["verbose"].stderr

    assert "Creating initial MLflow database tables" in stderr  # a fresh store
    assert "INFO mlflow" in stderr
    assert "newly initialized" in stderr  # transformers' load report: the new classifier head
    assert runs["verbose"].summary["status"].startswith("finished")


def test_verbose_and_quiet_together_is_a_usage_error(tmp_path):
    done = subprocess.run(
        xp_command("run", "-v", "-q", str(QUICKSTART)), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert "-v" in done.stderr and "-q" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


# ---- what the MLflow UI needs: the classic view, MLflow's own tags, prefix/name metrics ------------


def test_experiments_open_in_the_uis_classic_view(runs):
    for name in ("default", "quiet"):  # made by xp; made earlier without the tag
        experiment = runs[name].client().get_experiment_by_name("quickstart")
        assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development", name


def test_runs_carry_the_tags_mlflow_sets_itself(runs):
    tags = runs["default"].only_run().data.tags

    assert tags["mlflow.user"] == getpass.getuser()
    # Absolute, so the run leads back to its file from anywhere, though xp was given a relative path.
    assert tags["mlflow.source.name"] == str(QUICKSTART.resolve())
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.runName"] == runs["default"].only_run().info.run_name


def test_metric_names_use_mlflows_prefix_grouping(runs):
    stored = runs["default"].only_run()
    names = set(stored.data.metrics)

    assert {
        "train/loss",
        "train/learning_rate",
        "train/grad_norm",
        "train/epoch",
        "eval/loss",
        "eval/accuracy",
        "eval/f1",
    } <= names
    assert all(re.fullmatch(r"(train|eval|test|system)/\w+", name) for name in names), sorted(names)
    # MLflow samples system metrics every 10 s: a run that short may have none to show.
    if (stored.info.end_time - stored.info.start_time) / 1000 > 12:
        assert any(name.startswith("system/") for name in names), sorted(names)
