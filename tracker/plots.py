"""Learning-curve figures: training and validation loss, and each validation metric, over steps."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

Curve = Sequence[tuple[int, float]]


def plot_panels(panels: Mapping[str, Mapping[str, Curve]], path: Path) -> Path:
    """One PNG with a panel per title and a line per curve, optimizer steps on the x axis."""
    import matplotlib

    matplotlib.use("Agg")  # no display here, and never one inside a training run
    from matplotlib import pyplot

    count = max(len(panels), 1)
    figure, axes = pyplot.subplots(1, count, figsize=(7 if count == 1 else 5 * count, 4), dpi=100, squeeze=False)
    for axis, (title, curves) in zip(axes[0], panels.items()):
        for name, points in curves.items():
            if points:
                steps, values = zip(*points)
                axis.plot(steps, values, marker="o" if len(points) < 30 else None, label=name)
        axis.set_xlabel("optimizer step")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return path


def plot_curves(curves: Mapping[str, Curve], path: Path, title: str) -> Path:
    """One PNG with a line per curve."""
    return plot_panels({title: curves}, path)


def loss_and_metric_figures(history: Mapping[str, Curve], folder: Path) -> list[Path]:
    """`loss.png` (train_loss and eval_loss) and `metrics.png` (every eval_* metric but the loss)."""
    losses = {name: history[name] for name in ("train_loss", "eval_loss") if name in history}
    metrics = {name: points for name, points in history.items() if name.startswith("eval_") and name != "eval_loss"}
    figures = [plot_curves(losses, folder / "loss.png", "training and validation loss")]
    if metrics:
        figures.append(plot_curves(metrics, folder / "metrics.png", "validation metrics"))
    return figures
