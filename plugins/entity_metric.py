"""The `seqeval` metric: entity-level precision, recall and F1 as the CoNLL shared tasks score
them (an entity counts only when its type and every word of it are right), per entity type too,
and word accuracy. Computed with seqeval, the library `run_ner.py` and the course use (through
evaluate's `seqeval` module, which needs the hub; seqeval itself does not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker.plugin import TaskData, data_rules, outputs
from xp_plugins.tasks.token_classification import IGNORED, TokenClassification

# The scores of every entity type together; `f1_<type>` (f1_PER, f1_LOC) follow, one per type.
SCORES = ("f1", "precision", "recall", "accuracy")


def _needs_tags(options, data):
    if not isinstance(data.task, TokenClassification):
        yield None, f"scores entity tags (token classification), but the task predicts {data.task.describe()}"


@dataclass(frozen=True)
class EntityScores:
    """A `Metric` over tag ids per word: rows of tag ids, padded (and a word's later sub-tokens
    marked) with -100 in the references, which is skipped."""

    tag_names: tuple[str, ...]
    entity_types: tuple[str, ...]
    greater_is_better: bool = True

    def compute(self, predictions: Any, references: Any) -> dict[str, float]:
        import numpy as np
        from seqeval.metrics import accuracy_score, classification_report

        predicted, true = [], []
        for row_predictions, row_references in zip(np.asarray(predictions), np.asarray(references), strict=True):
            words = row_references != IGNORED
            predicted.append([self._name(i) for i in row_predictions[words]])
            true.append([self._name(i) for i in row_references[words]])
        # zero_division=0: a type never predicted scores 0, without a warning per evaluation.
        report = classification_report(true, predicted, output_dict=True, zero_division=0)
        overall = report["micro avg"]
        scores = {
            "f1": overall["f1-score"],
            "precision": overall["precision"],
            "recall": overall["recall"],
            "accuracy": accuracy_score(true, predicted),
        }
        # Every type of the training data, whether this split has it or not: the same names each time.
        scores |= {f"f1_{name}": report.get(name, {}).get("f1-score", 0.0) for name in self.entity_types}
        return {name: float(value) for name, value in scores.items()}

    def _name(self, tag_id: Any) -> str:
        # A prediction on a padded position, or an id out of range, reads as outside any entity.
        return self.tag_names[tag_id] if 0 <= tag_id < len(self.tag_names) else "O"


@outputs(lambda options: (*SCORES, "f1_*"))
@data_rules(_needs_tags)
def seqeval(data: TaskData) -> EntityScores:
    """Entity F1, precision and recall (seqeval, micro), f1_<type> per entity type, word accuracy.

    Scored as the CoNLL shared tasks and seqeval's default mode do: an entity counts when its type
    and every word of it are right. `f1_PER`, `f1_LOC`, ... name the data's entity types."""
    task = data.task
    assert isinstance(task, TokenClassification)  # the data rule says so
    return EntityScores(task.label_names or (), task.entity_types)
