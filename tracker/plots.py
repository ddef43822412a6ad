"""Learning-curve figures: training and validation loss, and each validation metric, over steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

Curve = Sequence[tuple[int, float]]
# A panel's size in inches, at DPI pixels an inch; at most PANELS_PER_ROW panels to a row.
PANEL_INCHES = (5, 4)
DPI = 100
PANELS_PER_ROW = 3
# A shared legend lies under the panels, this many names to a row, and makes the figure taller.
LEGEND_COLUMNS = 4
LEGEND_ROW_INCHES = 0.3


def plot_panels(
    panels: Mapping[str, Mapping[str, Curve]],
    path: Path,
    *,
    shared_legend: bool = False,
    verdict: str | None = None,
    since_step: int | None = None,
) -> Path:
    """One PNG with a panel per title (at most PANELS_PER_ROW to a row) and a line per curve, optimizer steps
    on the x axis. A curve name keeps its colour in every panel; with `shared_legend`, one legend
    under the panels names them all (for the same runs in every panel), else each panel has its own.
    A diagnosis `verdict` goes in the title; `since_step` (where overfitting began) is a dashed line."""
    import matplotlib

    matplotlib.use("Agg")  # no display here, and never one inside a training run
    from matplotlib import pyplot
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    count = max(len(panels), 1)
    rows = -(-count // PANELS_PER_ROW)
    columns = -(-count // rows)  # rows as even as can be: four panels are two by two
    names = list(dict.fromkeys(name for curves in panels.values() for name in curves))
    legend_columns = min(len(names), LEGEND_COLUMNS) or 1
    legend_inches = LEGEND_ROW_INCHES * -(-len(names) // legend_columns) if shared_legend else 0
    width, height = PANEL_INCHES
    figure, axes = pyplot.subplots(
        rows,
        columns,
        figsize=(7 if count == 1 else width * columns, height * rows + legend_inches),
        dpi=DPI,
        squeeze=False,
        layout="constrained" if shared_legend else None,
    )
    palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    colors = {name: palette(index % palette.N) for index, name in enumerate(names)}
    # The grid may have more axes than panels: those are hidden below.
    for axis, (title, curves) in zip(axes.flat, panels.items(), strict=False):
        for name, points in curves.items():
            if points:
                steps, values = zip(*points, strict=True)
                axis.plot(steps, values, marker="o" if len(points) < 30 else None, label=name, color=colors[name])
        if since_step is not None:
            axis.axvline(
                since_step,
                color="tab:red",
                linestyle="--",
                linewidth=1,
                label=f"{(verdict or '').replace('_', ' ')} from step {since_step}",
            )
        axis.set_xlabel("optimizer step")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        axis.set_title(title if verdict is None else f"{title}\nverdict: {verdict.replace('_', ' ')}")
        axis.grid(alpha=0.3)
        if not shared_legend:
            axis.legend()
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    if shared_legend:
        handles = [Line2D([], [], color=colors[name]) for name in names]
        figure.legend(handles, names, loc="outside lower center", ncols=legend_columns)
    else:
        figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return path


def plot_curves(
    curves: Mapping[str, Curve], path: Path, title: str, verdict: str | None = None, since_step: int | None = None
) -> Path:
    """One PNG with a line per curve."""
    return plot_panels({title: curves}, path, verdict=verdict, since_step=since_step)


def loss_and_metric_figures(
    history: Mapping[str, Curve], folder: Path, verdict: str | None = None, since_step: int | None = None
) -> list[Path]:
    """`loss.png` (train_loss and eval_loss) and `metrics.png` (every eval_* metric but the loss),
    the run's diagnosis marked when it has one."""
    losses = {name: history[name] for name in ("train_loss", "eval_loss") if name in history}
    metrics = {name: points for name, points in history.items() if name.startswith("eval_") and name != "eval_loss"}
    figures = [plot_curves(losses, folder / "loss.png", "training and validation loss", verdict, since_step)]
    if metrics:
        figures.append(plot_curves(metrics, folder / "metrics.png", "validation metrics", verdict, since_step))
    return figures
