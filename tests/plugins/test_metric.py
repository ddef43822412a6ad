"""The built-in metrics: the same numbers as scikit-learn and scipy, as plain floats under fixed
names; GLUE presets pick each task's official metrics; `evaluate` needs the Hub or a local script."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pluggy
import pytest
import scipy.stats
import sklearn.metrics

from tests.declared import data_problems_of, problems_of
from tracker import hookspecs
from tracker.components import TaskData
from tracker.errors import BuildError
from xp_plugins import metric as plugin
from xp_plugins.metric import GLUE_CLASSES
from xp_plugins.tasks.sequence_classification import SequenceClassification

SEEDS = [0, 1, 2]
AVERAGED = {
    "f1": sklearn.metrics.f1_score,
    "precision": sklearn.metrics.precision_score,
    "recall": sklearn.metrics.recall_score,
}


def class_ids(seed, num_classes, size=64):
    """Random predictions and references, about as often right as chance."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_classes, size), rng.integers(0, num_classes, size)


def regression_values(seed, size=64):
    """Predictions correlated with the references, with noise."""
    rng = np.random.default_rng(seed)
    references = rng.normal(size=size)
    return references + rng.normal(scale=0.5, size=size), references


def classes(count: int) -> TaskData:
    """Data whose task has `count` classes (the splits stay empty), as a metric factory is given it."""
    return TaskData({}, ("text",), SequenceClassification().with_labels(tuple("abcdefgh"[:count])))


# What the data rules and the factories look at is the task; the splits stay empty.
BINARY = TaskData({}, ("text",), SequenceClassification().with_labels(("no", "yes")))
THREE = classes(3)
REGRESSION = TaskData({}, ("text",), SequenceClassification().with_labels(None))


def test_the_hook_registers_every_metric():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()
    registered = {}
    manager.hook.xp_register_metrics(register=registered.__setitem__)
    assert set(registered) == {
        "accuracy",
        "f1",
        "precision",
        "recall",
        "matthews_correlation",
        "pearson",
        "spearman",
        "glue",
        "seqeval",  # entity scores: tests/plugins/test_token_classification.py
        "squad",  # answers: tests/plugins/test_question_answering.py
        "rouge",  # generated text: tests/plugins/test_seq2seq.py
        "perplexity",  # a language model's loss per token: tests/test_instruction_tuning_runs.py
        "evaluate",
    }


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_classes", [2, 5])
def test_accuracy_matches_scikit_learn(seed, num_classes):
    predictions, references = class_ids(seed, num_classes)
    expected = sklearn.metrics.accuracy_score(references, predictions)
    assert plugin.accuracy(classes(num_classes)).compute(predictions, references) == {
        "accuracy": pytest.approx(expected)
    }


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", AVERAGED)
@pytest.mark.parametrize(
    ("average", "num_classes"),
    [
        ("binary", 2),
        ("macro", 2),
        ("macro", 5),
        ("micro", 5),
        ("weighted", 5),
    ],
)
def test_f1_precision_recall_match_scikit_learn(name, average, num_classes, seed):
    predictions, references = class_ids(seed, num_classes)
    expected = AVERAGED[name](references, predictions, average=average)
    result = plugin.BUILT_IN[name](classes(num_classes), average=average).compute(predictions, references)
    assert result == {name: pytest.approx(expected)}


@pytest.mark.parametrize("name", AVERAGED)
def test_pos_label_picks_the_positive_class(name):
    predictions, references = class_ids(0, 2)
    expected = AVERAGED[name](references, predictions, pos_label=0)
    result = plugin.BUILT_IN[name](BINARY, pos_label=0).compute(predictions, references)
    assert result == {name: pytest.approx(expected)}


@pytest.mark.parametrize("name", AVERAGED)
def test_pos_label_only_goes_with_a_binary_average(name):
    assert problems_of(plugin.BUILT_IN[name], average="macro", pos_label=0) == {
        "pos_label": 'only applies to average = "binary", not "macro"'
    }
    assert problems_of(plugin.BUILT_IN[name], pos_label=-1) == {"pos_label": "expected an integer >= 0, got -1"}


NEEDS_CLASSES = "needs class labels, but the labels are numbers (a regression task); use pearson or spearman"
NEEDS_NUMBERS = "a correlation of regression outputs, but the task has {}; use accuracy, f1 or matthews_correlation"


@pytest.mark.parametrize("name", AVERAGED)
def test_an_averaged_metric_fits_the_number_of_classes(name):
    factory = plugin.BUILT_IN[name]
    assert data_problems_of(factory, BINARY) == {} and data_problems_of(factory, THREE, average="macro") == {}
    assert data_problems_of(factory, THREE) == {
        "average": '"binary" scores two classes, the task has 3 classes (a, b, c); use "macro", "micro" or "weighted"'
    }
    assert data_problems_of(factory, BINARY, pos_label=0) == {}
    assert data_problems_of(factory, BINARY, pos_label=2) == {
        "pos_label": "2 is not a class id of the task's 2 classes (no, yes)"
    }


@pytest.mark.parametrize(
    ("name", "task", "message"),
    [
        ("accuracy", REGRESSION, NEEDS_CLASSES),
        ("f1", REGRESSION, NEEDS_CLASSES),
        ("precision", REGRESSION, NEEDS_CLASSES),
        ("recall", REGRESSION, NEEDS_CLASSES),
        ("matthews_correlation", REGRESSION, NEEDS_CLASSES),
        ("pearson", BINARY, NEEDS_NUMBERS.format("2 classes (no, yes)")),
        ("spearman", THREE, NEEDS_NUMBERS.format("3 classes (a, b, c)")),
    ],
)
def test_a_metric_refuses_a_task_of_the_other_kind(name, task, message):
    assert data_problems_of(plugin.BUILT_IN[name], task) == {None: message}


@pytest.mark.parametrize(
    ("name", "task"),
    [("accuracy", THREE), ("matthews_correlation", BINARY), ("pearson", REGRESSION), ("spearman", REGRESSION)],
)
def test_a_metric_takes_a_task_of_its_kind(name, task):
    assert data_problems_of(plugin.BUILT_IN[name], task) == {}


@pytest.mark.parametrize(
    ("task_name", "data", "problem"),
    [
        ("mrpc", BINARY, None),
        ("mnli", THREE, None),
        ("ax", THREE, None),
        ("stsb", REGRESSION, None),
        ("mnli", BINARY, '"mnli" has 3 classes, the data has 2 classes (no, yes)'),
        ("sst2", THREE, '"sst2" has 2 classes, the data has 3 classes (a, b, c)'),
        ("stsb", BINARY, NEEDS_NUMBERS.format("2 classes (no, yes)")),
        (
            "cola",
            REGRESSION,
            '"cola" is a classification task, but the labels are numbers (regression); use task = "stsb"',
        ),
    ],
)
def test_a_glue_preset_must_fit_the_labels(task_name, data, problem):
    expected = {} if problem is None else {"task": problem}
    assert data_problems_of(plugin.glue, data, task=task_name) == expected


def test_data_rules_read_a_loaded_task(mrpc_small):
    """MRPC as the `hf` plugin loads it: two classes, so binary scores fit and correlations do not."""
    classes = "2 classes (not_equivalent, equivalent)"
    assert data_problems_of(plugin.f1, mrpc_small) == {}
    assert data_problems_of(plugin.glue, mrpc_small, task="mrpc") == {}
    assert data_problems_of(plugin.glue, mrpc_small, task="mnli") == {
        "task": f'"mnli" has 3 classes, the data has {classes}'
    }
    assert data_problems_of(plugin.pearson, mrpc_small) == {None: NEEDS_NUMBERS.format(classes)}


def test_metrics_declare_the_scores_they_produce():
    from tracker.spec.keys import spec_of

    assert list(spec_of(plugin.f1).outputs({})) == ["f1"]
    assert list(spec_of(plugin.glue).outputs({"task": "stsb"})) == ["pearson", "spearman"]
    assert list(spec_of(plugin.glue).outputs({"task": "mrpc"})) == ["accuracy", "f1"]
    assert spec_of(plugin.evaluate_metric).outputs is None  # unknown until loaded


@pytest.mark.parametrize("name", AVERAGED)
def test_a_class_never_predicted_scores_zero_without_warnings(name):
    predictions, references = np.zeros(8, dtype=int), np.zeros(8, dtype=int)  # no positives at all
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plugin.BUILT_IN[name](BINARY).compute(predictions, references) == {name: 0.0}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_classes", [2, 5])
def test_matthews_correlation_matches_scikit_learn(seed, num_classes):
    predictions, references = class_ids(seed, num_classes)
    expected = sklearn.metrics.matthews_corrcoef(references, predictions)
    result = plugin.matthews_correlation(classes(num_classes)).compute(predictions, references)
    assert result == {"matthews_correlation": pytest.approx(expected)}


@pytest.mark.parametrize("seed", SEEDS)
def test_correlations_match_scipy(seed):
    predictions, references = regression_values(seed)
    assert plugin.pearson(REGRESSION).compute(predictions, references) == {
        "pearson": pytest.approx(scipy.stats.pearsonr(predictions, references).statistic)
    }
    assert plugin.spearman(REGRESSION).compute(predictions, references) == {
        "spearman": pytest.approx(scipy.stats.spearmanr(predictions, references).statistic)
    }


def test_correlations_accept_a_regression_heads_column_of_predictions():
    predictions, references = regression_values(0)
    column = plugin.pearson(REGRESSION).compute(predictions[:, None], references)
    assert column == plugin.pearson(REGRESSION).compute(predictions, references)


# The others score tags, answers, generated text and a language model's loss per token.
@pytest.mark.parametrize("name", sorted(set(plugin.BUILT_IN) - {"seqeval", "squad", "rouge", "perplexity"}))
def test_scores_are_plain_floats_and_greater_is_better(name):
    predictions, references = class_ids(0, 2)
    metric = plugin.glue(BINARY, task="mrpc") if name == "glue" else plugin.BUILT_IN[name](BINARY)
    assert metric.greater_is_better is True
    assert all(type(score) is float for score in metric.compute(predictions, references).values())


@pytest.mark.parametrize(
    ("task", "names"),
    [
        ("cola", {"matthews_correlation"}),
        ("mrpc", {"accuracy", "f1"}),
        ("qqp", {"accuracy", "f1"}),
        ("stsb", {"pearson", "spearman"}),
        *[
            (task, {"accuracy"})
            for task in ("sst2", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli", "ax")
        ],
    ],
)
def test_glue_picks_each_tasks_official_metrics(task, names):
    if task == "stsb":
        data, (predictions, references) = REGRESSION, regression_values(0)
    else:
        data, (predictions, references) = classes(GLUE_CLASSES[task]), class_ids(0, 2)
    assert set(plugin.glue(data, task=task).compute(predictions, references)) == names


def test_glue_mrpc_f1_is_binary_f1():
    predictions, references = class_ids(0, 2)
    result = plugin.glue(BINARY, task="mrpc").compute(predictions, references)
    assert result["f1"] == pytest.approx(sklearn.metrics.f1_score(references, predictions))


def test_evaluate_without_the_hub_is_a_build_error_suggesting_built_in_metrics(monkeypatch):
    import evaluate

    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)  # as on a machine without network
    with pytest.raises(BuildError) as raised:
        plugin.evaluate_metric(BINARY, path="xp-tests/no-such-metric")
    assert raised.value.key == "path"
    assert "unreachable" in raised.value.message and "accuracy, f1" in raised.value.message


SCRIPT = """
import datasets
import evaluate


class Hits(evaluate.Metric):
    def _info(self):
        features = {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
        return evaluate.MetricInfo(description="", citation="", features=datasets.Features(features))

    def _compute(self, predictions, references, weight=1.0):
        hits = sum(p == r for p, r in zip(predictions, references))
        return {"hits": weight * hits, "label": "not a number", "per_class": [1, 2]}
"""


def test_evaluate_loads_a_local_script_and_keeps_the_numeric_scores(tmp_path):
    script = tmp_path / "hits.py"
    script.write_text(textwrap.dedent(SCRIPT))
    metric = plugin.evaluate_metric(BINARY, path=str(script), compute_options={"weight": 0.5}, greater_is_better=False)
    assert metric.compute(np.array([1, 0, 1]), np.array([1, 1, 1])) == {"hits": 1.0}
    assert metric.greater_is_better is False


def test_importing_the_module_imports_nothing_heavy():
    heavy = ("torch", "transformers", "sklearn", "scipy", "numpy")
    code = f"import sys, xp_plugins.metric; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
