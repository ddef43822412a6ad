"""The one way every suite turns repetitions into a figure: a ratio of two variants measured in
the same repetition, its median over repetitions, and its range."""

from __future__ import annotations

import statistics


def paired(reps: list[dict], name: str, reference: str, value) -> dict:
    """Median over repetitions of value(variant)/value(reference), both from the same repetition."""
    ratios = [value(rep[name]) / value(rep[reference]) for rep in reps]
    return {
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        name: statistics.median(value(rep[name]) for rep in reps),
        reference: statistics.median(value(rep[reference]) for rep in reps),
    }
