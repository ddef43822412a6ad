"""`xp compare`: runs picked by id, name, experiment or experiment file, side by side: a table of the
params that differ and the final and best metrics, and one figure overlaying their curves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.metric_names import TIMINGS, stored_name
from tracker.stores import (
    SHORT_ID,
    StoreError,
    all_experiments,
    experiment_ids,
    quoted,
    runs_selected,
    search_runs,
)

Curve = list[tuple[int, float]]


@dataclass
class Comparison:
    """What `xp compare` found: the runs in the order asked for, and the curves of each."""

    runs: list[Any]
    experiments: dict[str, str]  # experiment id -> name
    curves: dict[str, dict[str, Curve]] = field(default_factory=dict)  # run id -> metric -> points

    def label(self, run: Any) -> str:
        """The run's name, or name and short id when another compared run has the same name."""
        name = run.info.run_name
        if not name:
            return run.info.run_id[:SHORT_ID]
        if [other.info.run_name for other in self.runs].count(name) > 1:
            return f"{name} ({run.info.run_id[:8]})"
        return name


# ---- the runs: selectors -> runs ----------------------------------------------------------------


def find_runs(client: Any, selectors: Sequence[str], uri: str) -> list[Any]:
    """The runs each selector names, in the order given, each selector's oldest first; a run named
    twice is shown once.

    A selector ending in `.toml` is an experiment file: every run of it, however its path was
    spelled when it ran. Anything else is tried as, in turn: a run id, a run name (every run of
    that name), an experiment name (every run of that experiment), a unique prefix of a run id.
    """
    from tracker.redact import mask_uri

    store = mask_uri(uri)
    experiments = experiment_ids(client)
    runs: dict[str, Any] = {}
    problems = []  # every selector that finds nothing is reported, not just the first
    for selector in selectors:
        try:
            found = (
                _runs_of_file(client, experiments, selector, store)
                if selector.endswith(".toml")
                else _runs_named(client, experiments, selector, store)
            )
        except StoreError as problem:
            problems.append(str(problem))
            continue
        runs.update((run.info.run_id, run) for run in found if run.info.run_id not in runs)
    if problems:
        raise StoreError("\n".join(problems))
    return list(runs.values())


def _runs_of_file(client: Any, experiments: list[str], selector: str, store: str) -> list[Any]:
    """Runs whose experiment file is `selector`, compared as absolute paths: `xp.file.absolute`,
    or for runs from before xp recorded it, `xp.file` taken from the current folder."""
    target = Path(selector).expanduser().resolve()
    # Narrowed in the store by the file's name (`_` and `%` are LIKE wildcards: only wider), then exactly here.
    name = quoted(target.name)
    found = [
        run for run in search_runs(client, experiments, f"tags.`xp.file` LIKE '%{name}'") if _file_of(run) == target
    ]
    if not found:
        raise StoreError(f"{selector}: no run of the experiment file {target} in {store}")
    return found


def _file_of(run: Any) -> Path:
    tags = run.data.tags
    if "xp.file.absolute" in tags:
        return Path(tags["xp.file.absolute"])
    return Path(tags["xp.file"]).expanduser().resolve()


def _runs_named(client: Any, experiments: list[str], selector: str, store: str) -> list[Any]:
    found = runs_selected(client, experiments, selector, whole_experiments=True)
    if found:
        return sorted(found, key=lambda run: run.info.start_time or 0)  # oldest first, as the table reads
    from tracker.errors import did_you_mean

    names = {run.info.run_name for run in search_runs(client, experiments) if run.info.run_name}
    names |= {experiment.name for experiment in all_experiments(client)}
    raise StoreError(
        f"{selector}: no run id, run id prefix, run name or experiment name matches it "
        f"in {store}{did_you_mean(selector, names)}"
    )


# ---- what is compared: params, metrics and their curves ------------------------------------------


def compared_metric(stored: str) -> str | None:
    """The name a stored metric is compared under (`eval_accuracy` and `eval/accuracy` both as
    `eval/accuracy`), or None for metrics not compared (system metrics, timings, learning rate)."""
    name = stored_name(stored)
    prefix, _, rest = name.partition("/")
    if name == "train/loss" or (prefix in ("eval", "test") and not rest.endswith(TIMINGS)):
        return name
    return None


def lower_is_better(metric: str) -> bool:
    """Losses go down; every other metric xp logs goes up (as early stopping also assumes)."""
    return metric.endswith("loss")


def comparison(client: Any, runs: Sequence[Any]) -> Comparison:
    """The runs with their experiments' names and the full history of every compared metric."""
    experiments = {run.info.experiment_id: "" for run in runs}
    for experiment_id in experiments:
        experiments[experiment_id] = client.get_experiment(experiment_id).name
    found = Comparison(list(runs), experiments)
    for run in runs:
        curves: dict[str, Curve] = {}
        # A new spelling wins over an old one: sorted, `eval/x` comes before `eval_x`.
        for key in sorted(run.data.metrics):
            name = compared_metric(key)
            if name is not None and name not in curves:
                history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp))
                curves[name] = [(point.step, point.value) for point in history]  # the last is MLflow's latest
        found.curves[run.info.run_id] = curves
    return found


def _metric_order(name: str) -> tuple[int, bool, str]:
    prefix, _, rest = name.partition("/")
    return ("train", "eval", "test").index(prefix), rest != "loss", rest


def table_rows(found: Comparison) -> list[list[str]]:
    """Run id, status, experiment, the diagnosis; each param that differs; each eval/test metric's final value and,
    where it was logged more than once, its best (lowest for a loss, else highest)."""
    runs = found.runs
    rows = [
        ["run id", *[run.info.run_id[:SHORT_ID] for run in runs]],
        ["status", *[run.info.status for run in runs]],
        ["experiment", *[found.experiments[run.info.experiment_id] for run in runs]],
    ]
    if any("xp.diagnosis" in run.data.tags for run in runs):  # the verdict on each run's learning curves
        rows.append(["diagnosis", *[_verdict(run.data.tags) for run in runs]])
    for key in sorted({key for run in runs for key in run.data.params}):
        values = [run.data.params.get(key, "-") for run in runs]
        if len(set(values)) > 1:
            rows.append([key, *values])
    curves = [found.curves[run.info.run_id] for run in runs]
    names = sorted(
        {name for run_curves in curves for name in run_curves if not name.startswith("train/")}, key=_metric_order
    )
    for name in names:
        rows.append([f"{name} (final)", *[_number(c[name][-1][1] if c.get(name) else None) for c in curves]])
        if any(len(c.get(name, ())) > 1 for c in curves):
            best = min if lower_is_better(name) else max
            rows.append(
                [f"{name} (best)", *[_number(best(v for _, v in c[name]) if c.get(name) else None) for c in curves]]
            )
    return rows


def comparison_table(found: Comparison) -> str:
    """A column per run, headed by its name; a row per thing compared."""
    from tracker.tables import render_table

    return render_table(["", *[found.label(run) for run in found.runs]], table_rows(found))


def figure_panels(found: Comparison) -> dict[str, dict[str, Curve]]:
    """A panel per curve metric (train/loss, eval/loss, each eval metric), a line per run that logged it."""
    names = sorted(
        {name for curves in found.curves.values() for name in curves if not name.startswith("test/")}, key=_metric_order
    )
    return {
        name: {
            found.label(run): found.curves[run.info.run_id][name]
            for run in found.runs
            if found.curves[run.info.run_id].get(name)
        }
        for name in names
    }


def plot_comparison(found: Comparison, path: Path) -> Path | None:
    """One PNG overlaying the runs' curves, with one legend of run names; None when no run logged any."""
    from tracker.plots import plot_panels

    panels = figure_panels(found)
    if not panels:
        return None
    return plot_panels(panels, path, shared_legend=True)


def _verdict(tags: Any) -> str:
    verdict = tags.get("xp.diagnosis")
    if verdict is None:
        return "-"
    since = tags.get("xp.diagnosis.since_step")
    return verdict.replace("_", " ") + (f" from step {since}" if since else "")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
