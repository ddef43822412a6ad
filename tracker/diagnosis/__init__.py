"""Reading a run's learning curves: good fit, overfitting, underfitting, not learning, unstable,
or not enough evidence, each with its reason in numbers and a suggestion.

- `evidence`: what a verdict reads (Curves, PredictionStats), the same from every runner;
- `baseline`: what the trivial predictor the task names (always one class, a mean) scores;
- `verdicts`: `diagnose(evidence, thresholds)`, the one diagnosis function;
- `report`: where a diagnosis shows (tags, the text artifact).
"""

from tracker.diagnosis.evidence import Curves, Evidence, PredictionStats
from tracker.diagnosis.verdicts import VERDICTS, Diagnosis, Thresholds, diagnose

__all__ = ["VERDICTS", "Curves", "Diagnosis", "Evidence", "PredictionStats", "Thresholds", "diagnose"]
