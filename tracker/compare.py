"""`xp compare`: the params that differ and the final metrics of several runs, side by side."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

# Params every run has but that say nothing about the experiment's design.
_NOISE_PARAMS = ("derived.trainable_parameters",)


def find_runs(client: Any, selectors: Sequence[str]) -> list[Any]:
    """Runs named by id, or every run of an experiment file (its `xp.file` tag), oldest first."""
    runs = []
    for selector in selectors:
        if Path(selector).suffix == ".toml":
            found = client.search_runs(
                [e.experiment_id for e in client.search_experiments()],
                filter_string=f"tags.`xp.file` = '{selector}'", order_by=["attributes.start_time ASC"])
            if not found:
                raise LookupError(f"{selector}: no tracked run of this file in the store")
            runs.extend(found)
        else:
            try:
                runs.append(client.get_run(selector))
            except Exception as error:  # MLflow raises its own exception for an unknown id
                raise LookupError(f"{selector}: no such run id ({type(error).__name__})") from None
    unique = {run.info.run_id: run for run in runs}
    return list(unique.values())


def comparison_table(runs: Sequence[Any]) -> str:
    """Rows: run name, status, each differing param, each final eval/test metric; a column per run."""
    header = ["", *[run.info.run_name or run.info.run_id[:8] for run in runs]]
    rows = [["run id", *[run.info.run_id[:12] for run in runs]], ["status", *[run.info.status for run in runs]]]
    keys = sorted({key for run in runs for key in run.data.params})
    for key in keys:
        values = [run.data.params.get(key, "-") for run in runs]
        if len(set(values)) > 1 and key not in _NOISE_PARAMS:
            rows.append([key, *values])
    metrics = sorted({key for run in runs for key in run.data.metrics if key.startswith(("eval_", "test_"))})
    for key in metrics:
        rows.append([key, *[_number(run.data.metrics.get(key)) for run in runs]])
    table = [header, *rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table)


def plot_validation_curves(client: Any, runs: Sequence[Any], path: Path) -> Path:
    """One panel per validation metric, one line per run, optimizer steps on the x axis."""
    from tracker.plots import plot_panels

    names = sorted({key for run in runs for key in run.data.metrics if key.startswith("eval_")})
    panels = {name: {run.info.run_name or run.info.run_id[:8]:
                     sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
                     for run in runs}
              for name in names}
    return plot_panels(panels, path)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
