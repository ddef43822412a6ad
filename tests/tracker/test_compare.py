"""`xp compare` on a real SQLite MLflow store: runs picked by id, id prefix, run name, experiment
name or experiment file (any spelling of its path), the store by any spelling; a table of the
params that differ and the final and best metrics; one figure overlaying the runs' curves.

The store holds runs as xp logs them: `prefix/name` metrics and the `xp.file.absolute` tag, and runs
from before the rename (`eval_accuracy`, only `xp.file`), which compare under the new names.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mlflow_helpers import free_port, mlflow_server
from tracker import plots


@dataclass
class Store:
    folder: Path  # holds mlruns/mlflow.db and experiments/*.toml; the processes run here
    ids: dict[str, str]  # run name -> run id ("twin" has two: twin-1, twin-2)

    @property
    def database(self) -> Path:
        return self.folder / "mlruns" / "mlflow.db"


def _log(
    client,
    experiment_id: str,
    name: str,
    start: int,
    *,
    params: dict,
    metrics: dict,
    tags: dict,
    status: str = "FINISHED",
) -> str:
    """A run with params, and metrics as {name: [(step, value), ...]}."""
    from mlflow.entities import Metric, Param

    run_id = client.create_run(experiment_id, start_time=start, run_name=name, tags=tags).info.run_id
    points = [Metric(key, value, start + step, step) for key, curve in metrics.items() for step, value in curve]
    client.log_batch(run_id, metrics=points, params=[Param(key, value) for key, value in params.items()])
    client.set_terminated(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("compare")
    (folder / "mlruns").mkdir()
    (folder / "experiments").mkdir()
    quickstart, mrpc = folder / "experiments" / "quickstart.toml", folder / "experiments" / "mrpc.toml"
    quickstart.write_text("[experiment]\n")
    mrpc.write_text("[experiment]\n")
    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    artifacts = (folder / "artifacts").as_uri()
    quickstart_id = client.create_experiment("quickstart", artifact_location=artifacts)
    mrpc_id = client.create_experiment("mrpc", artifact_location=artifacts)
    elsewhere_id = client.create_experiment("elsewhere", artifact_location=artifacts)
    same = {"runner.max_steps": "4", "model.trainable_parameters": "1000"}
    ids = {
        # Logged before the rename, and before xp recorded the file's absolute path: its `xp.file`
        # is relative to the folder it ran in (this one).
        "qs-old": _log(
            client,
            quickstart_id,
            "qs-old",
            1000,
            params={**same, "optimizer.lr": "0.0001"},
            metrics={
                "train_loss": [(1, 0.70), (2, 0.60), (3, 0.50), (4, 0.45)],
                "learning_rate": [(1, 1e-4), (4, 0.0)],
                "eval_loss": [(2, 0.65), (4, 0.60)],
                "eval_accuracy": [(2, 0.70), (4, 0.66)],
                "eval_runtime": [(2, 1.5), (4, 1.4)],
                "test_accuracy": [(4, 0.64)],
            },
            tags={"xp.file": "experiments/quickstart.toml"},
        ),
        "qs-new": _log(
            client,
            quickstart_id,
            "qs-new",
            2000,
            params={**same, "optimizer.lr": "0.0003"},
            metrics={
                "train/loss": [(1, 0.70), (2, 0.50), (3, 0.40), (4, 0.35)],
                "train/learning_rate": [(1, 3e-4), (4, 0.0)],
                "eval/loss": [(2, 0.62), (4, 0.55)],
                "eval/accuracy": [(2, 0.72), (4, 0.75)],
                "eval/runtime": [(2, 1.5), (4, 1.4)],
                "system/cpu_utilization_percentage": [(0, 50.0)],
            },
            tags={
                "xp.file": "./experiments/quickstart.toml",
                "xp.file.absolute": str(quickstart),
                "xp.diagnosis": "overfitting",
                "xp.diagnosis.since_step": "2",
            },
        ),
        # Two runs of one name; the second is the newer, and failed.
        "twin-1": _log(
            client,
            mrpc_id,
            "twin",
            3000,
            params={"optimizer.lr": "2e-05"},
            metrics={
                "train/loss": [(1, 0.69), (2, 0.68)],
                "eval/loss": [(2, 0.67)],
                "eval/accuracy": [(2, 0.68)],
                "eval/f1": [(2, 0.81)],
            },
            tags={"xp.file": str(mrpc), "xp.file.absolute": str(mrpc)},
        ),
        "twin-2": _log(
            client,
            mrpc_id,
            "twin",
            4000,
            params={"optimizer.lr": "5e-05"},
            metrics={
                "train/loss": [(1, 0.69), (2, 0.66)],
                "eval/loss": [(2, 0.64)],
                "eval/accuracy": [(2, 0.70)],
                "eval/f1": [(2, 0.82)],
            },
            tags={"xp.file": str(mrpc), "xp.file.absolute": str(mrpc)},
            status="FAILED",
        ),
        # A file of the same name in another folder: never one of this folder's quickstart runs.
        "decoy": _log(
            client,
            elsewhere_id,
            "decoy",
            5000,
            params={},
            metrics={"eval/loss": [(1, 1.0)]},
            tags={
                "xp.file": "experiments/quickstart.toml",
                "xp.file.absolute": "/somewhere/else/experiments/quickstart.toml",
            },
        ),
    }
    return Store(folder, ids)


def xp_compare(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-m", "tracker", "compare", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **(env or {})},
    )


def table(stdout: str) -> dict[str, list[str]]:
    """The printed table as {row label: cells}; the header row is under "". Columns are at least
    two spaces apart, and no cell holds two spaces."""
    lines = [line for line in stdout.splitlines() if line.strip() and not set(line.strip()) <= {"─", " "}]
    rows = {"": re.split(r"\s{2,}", lines[0].strip())}
    for line in lines[1:]:
        label, *cells = re.split(r"\s{2,}", line.strip())
        rows[label] = cells
    return rows


def shown_runs(store: Store, stdout: str) -> list[str]:
    """The compared runs, in column order, by their key in `store.ids`."""
    by_short_id = {run_id[:12]: key for key, run_id in store.ids.items()}
    return [by_short_id[short] for short in table(stdout)["run id"]]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])  # the IHDR chunk: width, height


# ---- the table ------------------------------------------------------------------------------------


def test_table_has_a_column_per_run_and_rows_for_ids_status_experiment_differing_params_and_metrics(store):
    done = xp_compare("qs-old", "qs-new", "--no-png", cwd=store.folder)
    assert done.returncode == 0, done.stderr
    rows = table(done.stdout)
    assert rows[""] == ["qs-old", "qs-new"]
    assert rows["run id"] == [store.ids["qs-old"][:12], store.ids["qs-new"][:12]]  # as xp run prints it
    assert rows["status"] == ["FINISHED", "FINISHED"]
    assert rows["experiment"] == ["quickstart", "quickstart"]
    assert rows["diagnosis"] == ["-", "overfitting from step 2"]  # qs-old ran before xp read its curves
    # Only the params that differ; equal ones (max_steps, the parameter count) say nothing.
    assert rows["optimizer.lr"] == ["0.0001", "0.0003"]
    assert "runner.max_steps" not in rows and "model.trainable_parameters" not in rows
    # Old and new spellings side by side, under the new name; best = lowest loss, highest accuracy.
    assert rows["eval/loss (final)"] == ["0.6000", "0.5500"]
    assert rows["eval/loss (best)"] == ["0.6000", "0.5500"]
    assert rows["eval/accuracy (final)"] == ["0.6600", "0.7500"]
    assert rows["eval/accuracy (best)"] == ["0.7000", "0.7500"]
    # The test split is scored once: its final value is its best; a run without it shows "-".
    assert rows["test/accuracy (final)"] == ["0.6400", "-"]
    assert "test/accuracy (best)" not in rows
    # Eval/test metrics only: no timings, no training values, no system metrics, no old spellings.
    assert list(rows)[-5:] == [
        "eval/loss (final)",
        "eval/loss (best)",
        "eval/accuracy (final)",
        "eval/accuracy (best)",
        "test/accuracy (final)",
    ]
    assert not re.search(r"runtime|learning_rate|system|eval_|train/loss", done.stdout)


def test_a_name_of_several_runs_means_all_of_them_labelled_with_their_short_id(store):
    done = xp_compare("twin", "--no-png", cwd=store.folder)
    assert done.returncode == 0, done.stderr
    assert shown_runs(store, done.stdout) == ["twin-1", "twin-2"]  # newest last
    rows = table(done.stdout)
    assert rows[""] == [f"twin ({store.ids['twin-1'][:8]})", f"twin ({store.ids['twin-2'][:8]})"]
    assert rows["status"] == ["FINISHED", "FAILED"]
    assert rows["eval/f1 (final)"] == ["0.8100", "0.8200"]
    assert "eval/f1 (best)" not in rows  # evaluated once: nothing better than the final value


# ---- choosing runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (lambda ids: [ids["qs-old"]], ["qs-old"]),  # a full run id
        (lambda ids: [ids["qs-new"][:8]], ["qs-new"]),  # a unique prefix, as short as xp prints it
        (lambda ids: ["qs-new"], ["qs-new"]),  # a run name
        (lambda ids: ["quickstart"], ["qs-old", "qs-new"]),  # an experiment name: all its runs
        # In the order named, oldest first within each; a run named twice is shown once.
        (lambda ids: ["qs-new", "mrpc", "quickstart"], ["qs-new", "twin-1", "twin-2", "qs-old"]),
        # An experiment file, however its path is spelled, for runs logged with and without its absolute path.
        (lambda ids: ["experiments/quickstart.toml"], ["qs-old", "qs-new"]),
        (lambda ids: ["./experiments/quickstart.toml"], ["qs-old", "qs-new"]),
        (lambda ids: ["experiments/../experiments/mrpc.toml"], ["twin-1", "twin-2"]),
    ],
    ids=["run id", "id prefix", "run name", "experiment", "order", "file", "./file", "file/../"],
)
def test_selectors(store, selectors, expected):
    done = xp_compare(*selectors(store.ids), "--no-png", cwd=store.folder)
    assert done.returncode == 0, done.stderr
    assert shown_runs(store, done.stdout) == expected


def test_an_experiment_file_is_found_from_another_folder_by_its_absolute_path(store, tmp_path):
    """Runs that recorded the file's absolute path are found wherever compare runs."""
    done = xp_compare(
        str(store.folder / "experiments" / "mrpc.toml"), "--uri", str(store.folder / "mlruns"), "--no-png", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert shown_runs(store, done.stdout) == ["twin-1", "twin-2"]


# ---- the store -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        None,  # no --uri: ./mlruns/mlflow.db, as xp run writes it
        "mlruns",
        "./mlruns",
        "mlruns/mlflow.db",
        "{folder}/mlruns/mlflow.db",
        "sqlite:///mlruns/mlflow.db",
        "sqlite:///{folder}/mlruns",  # a folder, even in a URI, means its mlflow.db
    ],
)
def test_any_spelling_of_the_store(store, spelling):
    uri = [] if spelling is None else ["--uri", spelling.format(folder=store.folder)]
    done = xp_compare("qs-old", *uri, "--no-png", cwd=store.folder)
    assert done.returncode == 0, done.stderr
    assert shown_runs(store, done.stdout) == ["qs-old"]
    assert "INFO" not in done.stderr  # MLflow's chatter when it opens a store


def test_the_store_from_the_environment_is_spelled_the_same_way(store, tmp_path):
    done = xp_compare("qs-old", "--no-png", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": str(store.folder / "mlruns")})
    assert done.returncode == 0, done.stderr
    assert shown_runs(store, done.stdout) == ["qs-old"]


def test_a_tracking_server(store):
    with mlflow_server(f"sqlite:///{store.database}", store.folder) as base:
        done = xp_compare("quickstart", store.ids["twin-2"][:8], "--uri", base, "--no-png", cwd=store.folder)
    assert done.returncode == 0, done.stderr
    assert shown_runs(store, done.stdout) == ["qs-old", "qs-new", "twin-2"]


# ---- the figure ----------------------------------------------------------------------------------


def _expected_size(columns: int, rows: int, legend_rows: int = 1) -> tuple[int, int]:
    """Pixels of a figure of `columns` x `rows` panels and a legend of `legend_rows` rows under them."""
    width, height = plots.PANEL_INCHES
    return (
        round(width * columns * plots.DPI),
        round((height * rows + plots.LEGEND_ROW_INCHES * legend_rows) * plots.DPI),
    )


def test_one_figure_overlays_the_runs_curves_a_panel_per_metric(store, tmp_path):
    png = tmp_path / "figures" / "curves.png"
    done = xp_compare("quickstart", "--png", str(png), cwd=store.folder)
    assert done.returncode == 0, done.stderr
    assert f"curves: {png}" in done.stderr
    # train/loss, eval/loss and eval/accuracy, side by side, with one legend under them.
    assert png_size(png) == _expected_size(3, 1)
    from matplotlib import pyplot

    pixels = pyplot.imread(png)
    assert len({tuple(pixel) for pixel in pixels.reshape(-1, pixels.shape[-1])[::37]}) > 20, "a blank image"


def test_the_figure_has_a_panel_per_metric_and_a_line_per_run_named_after_it(store):
    """What the figure draws, read from the same store in this process."""
    from mlflow import MlflowClient

    from tracker.compare import comparison, figure_panels, find_runs

    uri = f"sqlite:///{store.database}"
    client = MlflowClient(uri)
    panels = figure_panels(comparison(client, find_runs(client, ["quickstart"], uri)))
    assert list(panels) == ["train/loss", "eval/loss", "eval/accuracy"]
    assert all(list(lines) == ["qs-old", "qs-new"] for lines in panels.values())
    assert panels["train/loss"]["qs-old"] == [(1, 0.70), (2, 0.60), (3, 0.50), (4, 0.45)]  # from `train_loss`
    assert panels["eval/accuracy"]["qs-new"] == [(2, 0.72), (4, 0.75)]


def test_more_panels_wrap_onto_even_rows(store, tmp_path):
    png = tmp_path / "mrpc.png"
    done = xp_compare("mrpc", "--png", str(png), cwd=store.folder)
    assert done.returncode == 0, done.stderr
    assert png_size(png) == _expected_size(2, 2)  # train/loss, eval/loss; eval/accuracy, eval/f1


def test_the_figure_goes_to_compare_png_unless_told_otherwise(store, tmp_path):
    uri = ["--uri", str(store.folder / "mlruns")]
    done = xp_compare("quickstart", *uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert png_size(tmp_path / "compare.png") == _expected_size(3, 1)
    (tmp_path / "compare.png").unlink()
    done = xp_compare("quickstart", *uri, "--no-png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


# ---- mistakes: a line each, exit code 2, nothing created ------------------------------------------


def _fails(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line


def test_an_ambiguous_id_prefix_lists_the_candidates(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'crowd.db'}")
    experiment_id = client.create_experiment("crowd", artifact_location=(tmp_path / "artifacts").as_uri())
    # 17 ids over 16 hex digits: two share a first digit.
    ids = [client.create_run(experiment_id, run_name=f"r{index}").info.run_id for index in range(17)]
    prefix = next(run_id[0] for run_id in ids if sum(other[0] == run_id[0] for other in ids) > 1)
    sharing = [run_id for run_id in ids if run_id.startswith(prefix)]
    done = xp_compare(prefix, "--uri", "crowd.db", "--no-png", cwd=tmp_path)
    _fails(
        done,
        f"{prefix}: ambiguous run id prefix, matches {len(sharing)} runs",
        *[run_id[:12] for run_id in sharing],
        "give more characters",
    )


def test_nothing_found_says_what_was_searched_and_suggests_a_name(store):
    done = xp_compare("qs-olf", "--no-png", cwd=store.folder)
    _fails(
        done,
        "qs-olf: no run id, run id prefix, run name or experiment name matches it in sqlite:///mlruns/mlflow.db",
        '(did you mean "qs-old"?)',
    )


def test_every_selector_that_finds_nothing_is_reported_and_nothing_is_printed(store):
    done = xp_compare("qs-old", "nothing-here", "experiments/other.toml", "--no-png", cwd=store.folder)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: nothing-here: no run id, run id prefix, run name or experiment name matches it in "
        "sqlite:///mlruns/mlflow.db",
        f"error: experiments/other.toml: no run of the experiment file {store.folder / 'experiments' / 'other.toml'} "
        "in sqlite:///mlruns/mlflow.db",
    ]


@pytest.mark.parametrize(
    ("spelling", "why"),
    [
        ("nowhere", "no such file {folder}/nowhere"),
        ("empty", "no mlflow.db in the folder {folder}/empty"),
        ("sqlite:///nowhere.db", "no such file nowhere.db"),
    ],
)
def test_a_store_that_is_not_there_is_not_created(tmp_path, spelling, why):
    (tmp_path / "empty").mkdir()
    done = xp_compare("anything", "--uri", spelling, cwd=tmp_path)
    _fails(done, f"--uri {spelling}: no tracking store there ({why.format(folder=tmp_path)})")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty"]
    assert list((tmp_path / "empty").iterdir()) == []


def test_no_store_in_this_folder(tmp_path):
    done = xp_compare("anything", cwd=tmp_path)
    _fails(done, "the default store sqlite:///mlruns/mlflow.db (give --uri or set MLFLOW_TRACKING_URI)")
    assert list(tmp_path.iterdir()) == []  # no mlruns folder, no compare.png


def test_a_server_that_does_not_answer(tmp_path):
    done = xp_compare("anything", "--uri", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    _fails(done, "cannot reach the MLflow tracking server")
