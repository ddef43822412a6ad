"""A run's diagnosis made from what its runner handed back, and where it shows: run tags, a short
text artifact (`diagnosis.txt`); the console summary, the curve figures and `xp compare` read the
tags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tracker.diagnosis.evidence import Evidence
from tracker.diagnosis.verdicts import Diagnosis, Thresholds, diagnose

TAG = "xp.diagnosis"  # the verdict; the reason, suggestion and start step under xp.diagnosis.*


def diagnosis_of(
    data: Any, metrics: Sequence[Any], result: Any, section: Mapping[str, Any] | None
) -> tuple[Diagnosis, Evidence, Thresholds] | None:
    """The diagnosis of a finished run, from its curves, its last predictions and the trivial
    baseline the task gives for its data (none: the curves' verdicts only); None when the runner
    handed back no curves."""

    from tracker.diagnosis.baseline import trivial_scores

    if result.curves is None:
        return None
    trivial = data.task.baseline(data)
    baseline, directions = (
        trivial_scores(trivial.predictions, _references(trivial, data), metrics) if trivial is not None else ({}, {})
    )
    evidence = Evidence(
        result.curves,
        result.predictions,
        baseline,
        data.task.label_names,
        directions,
        trivial=trivial.described if trivial is not None else "",
    )
    thresholds = Thresholds.of(section)
    return diagnose(evidence, thresholds), evidence, thresholds


def _references(trivial: Any, data: Any) -> Any:
    """What the baseline is scored against: the task's own, else the validation labels."""
    import numpy as np

    return trivial.references if trivial.references is not None else np.asarray(data.splits["eval"]["label"])


def tags_of(diagnosis: Diagnosis) -> dict[str, str]:
    tags = {
        TAG: diagnosis.verdict,
        f"{TAG}.reason": diagnosis.reason,
        f"{TAG}.suggestion": diagnosis.suggestion,
        f"{TAG}.explanation": diagnosis.explanation,
    }
    if diagnosis.since_step is not None:
        tags[f"{TAG}.since_step"] = str(diagnosis.since_step)
    return tags


def write_text(path: Path, diagnosis: Diagnosis, evidence: Evidence, thresholds: Thresholds) -> Path:
    """`diagnosis.txt`: the verdict, why, what to try, the trivial baseline and the thresholds."""
    lines = [
        f"verdict:    {diagnosis.verdict}",
        f"reason:     {diagnosis.reason}",
        f"suggestion: {diagnosis.suggestion}",
    ]
    if diagnosis.since_step is not None:
        lines.append(f"since step: {diagnosis.since_step}")
    if evidence.baseline:
        lines.append(
            f"trivial baseline (always {evidence.trivial}): "
            + ", ".join(f"{name.replace('eval_', 'eval/', 1)} {value:.4f}" for name, value in evidence.baseline.items())
        )
    lines.append(
        f"evaluations: {len(evidence.curves.evaluations)}, training-loss logs: {len(evidence.curves.train_loss)}"
    )
    lines.append(
        "thresholds ([diagnosis]): " + ", ".join(f"{key} = {value}" for key, value in asdict(thresholds).items())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
