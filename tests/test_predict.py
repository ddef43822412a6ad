"""`xp predict MODEL --input FILE`: the model named every way a user can name it, files in every
format, and every mistake a user can make answered in one line with exit code 2.

The models are real: a tiny BERT sequence classifier saved with save_pretrained beside its
xp.json (as `outputs/<run>/model/`), and the same model logged with MLflow's transformers flavor
to a real SQLite store, registered as a model version with an alias. `xp` runs as a real process;
its predictions must equal the model's own outputs computed here, row by row.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mlflow_helpers import DATA, free_port, sqlite_store, xp_command

LABELS = ("not_equivalent", "equivalent")
MAX_LENGTH = 16  # shorter than most rows: predictions depend on the recorded truncation
REGISTERED = "tiny-paraphrase"
INPUT_COLUMNS = ["idx", "sentence1", "sentence2", "label"]  # the paraphrase validation split
PREDICTED = ["label", "label_id", "score"]


@dataclass
class Models:
    """A store with the logged model, its run and runs without a model, and the folders and data."""

    folder: Path  # every xp process runs here
    store: str
    run_id: str
    run_name: str
    unique_prefix: str  # the shortest prefix of run_id that no other run shares
    ambiguous_prefix: str  # a prefix of several run ids
    ambiguous_ids: list[str]
    run_without_model: str
    saved: Path  # save_pretrained folder with xp.json
    plain: Path  # the same without xp.json: a model from elsewhere
    regression: Path  # a one-output regression model with its xp.json
    csv: Path  # the validation split in each format
    jsonl: Path
    parquet: Path


def _classifier(checkpoint: Path, **head):
    """A random head on the tiny BERT, sharpened and centred on the validation rows: untrained, it
    would give every row the same class at ~0.5, and comparing labels would prove little."""
    import pandas as pd
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, **head).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    rows = pd.read_csv(DATA / "validation.csv")
    encoded = tokenizer(
        rows["sentence1"].tolist(),
        rows["sentence2"].tolist(),
        truncation=True,
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        model.classifier.weight.mul_(20_000)  # the pooled outputs of the rows differ by little
        logits = model(**encoded).logits
        if logits.shape[1] == 2:  # the classes split the rows about in half
            model.classifier.bias[1] -= (logits[:, 1] - logits[:, 0]).quantile(0.5)  # between two rows
    return model, tokenizer


def _save(folder: Path, model, tokenizer, xp: dict | None) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if xp is not None:
        (folder / "xp.json").write_text(json.dumps(xp), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_checkpoint) -> Models:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("predict")
    # Not ./mlflow.db, which MLflow 3 opens when no store is set: xp must use the one it is given.
    (folder / "tracking").mkdir()
    store = sqlite_store(folder / "tracking")
    model, tokenizer = _classifier(
        tiny_checkpoint, id2label=dict(enumerate(LABELS)), label2id={name: i for i, name in enumerate(LABELS)}
    )
    card = {"text_columns": ["sentence1", "sentence2"], "label_names": list(LABELS), "max_length": MAX_LENGTH}
    saved = _save(folder / "outputs" / "tiny-paraphrase" / "model", model, tokenizer, card)
    plain = _save(folder / "plain", model, tokenizer, None)
    regression = _save(
        folder / "regression",
        *_classifier(tiny_checkpoint, num_labels=1, problem_type="regression"),
        {**card, "label_names": None},
    )

    # MLflow puts a SQLite store's artifacts under ./mlruns of the working directory; the env
    # variable (not mlflow.set_tracking_uri) names the store, so it is undone after this module.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", store)
        with mlflow.start_run(run_name="tiny-paraphrase") as run:
            mlflow.transformers.log_model(
                transformers_model={"model": model, "tokenizer": tokenizer},
                name="model",
                task="text-classification",
                metadata={f"xp.{key}": value for key, value in card.items()},
                pip_requirements=["transformers", "torch"],
                registered_model_name=REGISTERED,
            )
        client = MlflowClient(store)
        client.set_registered_model_alias(REGISTERED, "champion", "1")
        # A later run of the same name that logged no model (a rerun that failed), then runs
        # without models until two ids share a first character: 17 runs always do.
        experiment_id = run.info.experiment_id
        others = [
            client.create_run(experiment_id, run_name=name).info.run_id for name in ("tiny-paraphrase", "no-model")
        ]
        while len({run_id[0] for run_id in [run.info.run_id, *others]}) == len(others) + 1:
            others.append(client.create_run(experiment_id, run_name=f"no-model-{len(others)}").info.run_id)
    run_id = run.info.run_id
    every = [run_id, *others]
    ambiguous = next(c for c in {i[0] for i in every} if sum(i.startswith(c) for i in every) > 1)
    unique = next(run_id[:n] for n in range(1, 33) if not any(o.startswith(run_id[:n]) for o in others))

    frame = pd.read_csv(DATA / "validation.csv")
    csv = folder / "validation.csv"
    frame.to_csv(csv, index=False)
    frame.to_json(folder / "validation.jsonl", orient="records", lines=True)
    frame.to_parquet(folder / "validation.parquet", index=False)
    return Models(
        folder,
        store,
        run_id,
        "tiny-paraphrase",
        unique,
        ambiguous,
        [i for i in every if i.startswith(ambiguous)],
        others[1],
        saved,
        plain,
        regression,
        csv,
        folder / "validation.jsonl",
        folder / "validation.parquet",
    )


def direct(
    folder: Path, *texts: list[str], max_length: int = MAX_LENGTH
) -> tuple[list[int], list[float], list[list[float]]]:
    """The model run by hand on all rows at once: class ids, their probabilities, and every
    class's probability; for regression only the values, in the middle."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(*texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoded).logits
    if model.config.num_labels == 1:
        return [], logits[:, 0].tolist(), []
    probs = torch.softmax(logits, dim=-1)
    scores, ids = probs.max(dim=-1)
    return ids.tolist(), scores.tolist(), probs.tolist()


@pytest.fixture(scope="module")
def expected(models):
    import pandas as pd

    rows = pd.read_csv(models.csv)
    ids, scores, probs = direct(models.saved, rows["sentence1"].tolist(), rows["sentence2"].tolist())
    assert set(ids) == {0, 1}, "both classes should be predicted, or comparing labels proves little"
    return ids, scores, probs


def predict(models: Models, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = xp_command("predict", *args)
    if env is None and "--uri" not in args:
        command += ["--uri", models.store]
    return subprocess.run(command, cwd=models.folder, capture_output=True, text=True, timeout=300, env=env)


def read(path: Path):
    import pandas as pd

    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    return pd.read_parquet(path)


def assert_predictions(frame, ids, scores) -> None:
    assert frame["label_id"].tolist() == ids
    assert frame["label"].tolist() == [LABELS[i] for i in ids]
    assert frame["score"].tolist() == pytest.approx(scores, abs=1e-4)


# ---- naming the model, and the table formats --------------------------------------------------

REFERENCES = {  # how MODEL is written -> the input and output formats tried with it
    "run id": (lambda m: m.run_id, "csv", "predicted.csv"),
    "unique run id prefix": (lambda m: m.unique_prefix, "jsonl", "predicted.jsonl"),
    "run name": (lambda m: m.run_name, "parquet", "predicted.parquet"),
    "runs:/ URI": (lambda m: f"runs:/{m.run_id}/model", "csv", "predicted.parquet"),
    "models:/ name and version": (lambda m: f"models:/{REGISTERED}/1", "parquet", "predicted.csv"),
    "models:/ name and alias": (lambda m: f"models:/{REGISTERED}@champion", "csv", "predicted.jsonl"),
    "local folder": (lambda m: str(m.saved.relative_to(m.folder)), "jsonl", None),
}


@pytest.mark.parametrize("reference", REFERENCES)
def test_every_way_of_naming_the_model_predicts_what_the_model_says(models, expected, reference):
    spec, input_format, output_name = REFERENCES[reference]
    source = getattr(models, input_format)
    args = [spec(models), "--input", source.name] + (["--output", output_name] if output_name else [])

    done = predict(models, *args)

    assert done.returncode == 0, done.stderr
    # The default output sits next to the input, in the input's format.
    output = models.folder / (output_name or f"{source.stem}.predictions{source.suffix}")
    frame = read(output)
    # Every input column, the input's own `label` renamed so the predicted one can take its name.
    assert list(frame.columns) == ["idx", "sentence1", "sentence2", "input_label", *PREDICTED]
    original = read(models.csv)
    assert frame["sentence1"].tolist() == original["sentence1"].tolist()
    assert frame["input_label"].astype(int).tolist() == original["label"].tolist()
    assert_predictions(frame, *expected[:2])
    assert f"wrote {output_name or output.name} ({len(original)} rows)" in done.stderr
    assert not (models.folder / "mlflow.db").exists(), "MLflow's default store was opened instead of --uri"
    if reference in ("run id", "unique run id prefix", "run name"):  # the run it meant is said
        assert f"model: run {models.run_id}" in done.stderr
    if reference == "run name":  # a later run of that name logged no model: the one that did is used
        assert f"2 runs are named {models.run_name}; using the newest that logged a model" in done.stderr


def test_tracking_uri_defaults_to_the_environment_and_stdout_gets_csv(models, expected):
    import io
    import os

    import pandas as pd

    done = predict(
        models,
        models.run_id,
        "--input",
        models.csv.name,
        "--output",
        "-",
        env={**os.environ, "MLFLOW_TRACKING_URI": models.store},
    )

    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(io.StringIO(done.stdout))
    assert_predictions(frame, *expected[:2])
    assert "Predicting" in done.stderr and "Predicting" not in done.stdout  # the bar stays on stderr


def test_probabilities_add_one_column_per_class(models, expected):
    done = predict(
        models,
        str(models.saved),
        "--input",
        models.csv.name,
        "--output",
        "probs.csv",
        "--probabilities",
        "--batch-size",
        "7",
        "--device",
        "cpu",
    )

    assert done.returncode == 0, done.stderr
    frame = read(models.folder / "probs.csv")
    assert list(frame.columns)[-5:] == [*PREDICTED, "prob_not_equivalent", "prob_equivalent"]
    ids, scores, probs = expected
    assert_predictions(frame, ids, scores)  # batches of 7 (padded apart) give the same answers
    assert frame["prob_not_equivalent"].tolist() == pytest.approx([p[0] for p in probs], abs=1e-4)
    assert frame["prob_equivalent"].tolist() == pytest.approx([p[1] for p in probs], abs=1e-4)


def test_single_sentence_model(models, tmp_path):
    import pandas as pd

    folder = shutil.copytree(models.saved, tmp_path / "single")
    (folder / "xp.json").write_text(
        json.dumps({"text_columns": ["sentence"], "label_names": list(LABELS), "max_length": MAX_LENGTH})
    )
    rows = pd.read_csv(models.csv).rename(columns={"sentence1": "sentence"})[["idx", "sentence"]]
    rows.to_csv(tmp_path / "single.csv", index=False)

    done = predict(models, str(folder), "--input", str(tmp_path / "single.csv"))

    assert done.returncode == 0, done.stderr
    frame = read(tmp_path / "single.predictions.csv")
    assert list(frame.columns) == ["idx", "sentence", *PREDICTED]
    assert_predictions(frame, *direct(folder, rows["sentence"].tolist())[:2])


def test_text_columns_option_maps_differently_named_columns(models, expected, tmp_path):
    import pandas as pd

    rows = pd.read_csv(models.csv).rename(columns={"sentence1": "first", "sentence2": "second"})
    rows.to_parquet(tmp_path / "renamed.parquet", index=False)

    done = predict(
        models, models.run_id, "--input", str(tmp_path / "renamed.parquet"), "--text-columns", "first,second"
    )

    assert done.returncode == 0, done.stderr
    assert_predictions(read(tmp_path / "renamed.predictions.parquet"), *expected[:2])


def test_folder_without_xp_metadata_reads_its_text_column(models, tmp_path):
    import pandas as pd

    rows = pd.read_csv(models.csv).rename(columns={"sentence2": "text"})[["text"]]
    rows.to_json(tmp_path / "texts.jsonl", orient="records", lines=True)

    done = predict(models, str(models.plain), "--input", str(tmp_path / "texts.jsonl"))

    assert done.returncode == 0, done.stderr
    frame = read(tmp_path / "texts.predictions.jsonl")
    # Labels from id2label; truncation at the tokenizer's own limit, as nothing recorded another.
    assert_predictions(frame, *direct(models.plain, rows["text"].tolist(), max_length=128)[:2])


def test_regression_model_writes_the_value_as_score(models, tmp_path):
    import pandas as pd

    rows = pd.read_csv(models.csv)

    done = predict(models, str(models.regression), "--input", models.csv.name, "--output", str(tmp_path / "values.csv"))

    assert done.returncode == 0, done.stderr
    frame = read(tmp_path / "values.csv")
    assert list(frame.columns) == [*INPUT_COLUMNS, "score"]  # no label: there are no classes
    _, values, _ = direct(models.regression, rows["sentence1"].tolist(), rows["sentence2"].tolist())
    assert frame["score"].tolist() == pytest.approx(values, abs=1e-4)
    assert "(regression)" in done.stderr


def test_a_model_in_a_store_on_this_machine_is_read_where_it_is_not_copied(models, tmp_path):
    from tracker.predict_model import resolve_model

    scratch = tmp_path / "scratch"
    scratch.mkdir()

    source = resolve_model(models.run_id, models.store, scratch)

    assert source.model_folder.is_relative_to(models.folder / "mlruns")  # the store's artifacts
    assert list(scratch.iterdir()) == []


# ---- start-up, as `xp run` starts (tracker.garbage_collection) -----------------------------------


def test_the_collector_is_off_until_the_first_batch_is_out_then_start_up_is_frozen(models, tmp_path):
    """Reading the rows, loading the model and predicting the first batch make nearly every object
    the command will hold: Python's garbage collector is off meanwhile. From the second batch on it
    is on, with what start-up made frozen out of its sight; afterwards all is as it was."""
    import gc

    import torch
    from transformers import BertForSequenceClassification

    from tracker.predict import predict_file
    from tracker.registry import load_registry

    seen = []  # (moment, collector on, objects frozen)

    def note(moment: str) -> None:
        seen.append((moment, gc.isenabled(), gc.get_freeze_count()))

    def before_a_batch(module, args) -> None:  # every module's forward; the model's is a batch
        if isinstance(module, BertForSequenceClassification):
            note("batch")

    hook = torch.nn.modules.module.register_module_forward_pre_hook(before_a_batch)
    try:
        predict_file(
            str(models.saved),
            models.csv,
            str(tmp_path / "predicted.csv"),
            registry=load_registry(),
            batch_size=25,
            say=lambda text: text.startswith("model:") and note("model loaded"),  # said once it is
        )
    finally:
        hook.remove()

    assert [moment for moment, _, _ in seen] == ["model loaded", "batch", "batch", "batch"]  # 60 rows
    loaded, first_batch, *later_batches = seen
    for _, collector_on, frozen in (loaded, first_batch):
        assert not collector_on and frozen == 0
    for _, collector_on, frozen in later_batches:
        assert collector_on and frozen > 100_000  # torch, transformers, the model: out of the collector's sight
    assert gc.isenabled() and gc.get_freeze_count() == 0


# ---- mistakes: one line, exit code 2, no traceback -----------------------------------------------


def _write(models: Models, name: str, text: str) -> str:
    (models.folder / name).write_text(text, encoding="utf-8")
    return name


def _with_card(models: Models, name: str, card_text: str) -> str:
    """A copy of the saved model whose xp.json holds `card_text`."""
    folder = models.folder / name
    if not folder.exists():
        shutil.copytree(models.saved, folder)
    (folder / "xp.json").write_text(card_text, encoding="utf-8")
    return str(folder)


MISTAKES = {  # name -> (arguments after `xp predict`, fragments of the error line)
    "unknown run": (
        lambda m: ["no-such-run", "-i", m.csv.name],
        ["MODEL no-such-run: no folder, and no run with this id, id prefix or name in sqlite:///"],
    ),
    "ambiguous run id prefix": (
        lambda m: [m.ambiguous_prefix, "-i", m.csv.name],
        lambda m: [
            f"MODEL {m.ambiguous_prefix}: ambiguous run id prefix, matches {len(m.ambiguous_ids)} runs",
            *(run_id[:12] for run_id in m.ambiguous_ids),  # as xp prints ids
            "give more characters",
        ],
    ),
    "run without a model": (
        lambda m: [m.run_without_model, "-i", m.csv.name],
        lambda m: [f"MODEL {m.run_without_model} (no-model): this run logged no model", "save_model = true"],
    ),
    "unknown registered model": (
        lambda m: ["models:/nothing-registered/1", "-i", m.csv.name],
        ["MODEL models:/nothing-registered/1:", "nothing-registered", "not found"],
    ),
    "missing folder": (lambda m: ["./no/such/folder", "-i", m.csv.name], ["MODEL ./no/such/folder: no such folder"]),
    "folder that is no model": (
        lambda m: [str(m.folder / "mlruns"), "-i", m.csv.name],
        ["neither MLmodel nor config.json"],
    ),
    "store that does not exist": (
        lambda m: [m.run_id, "-i", m.csv.name, "--uri", "sqlite:///nowhere/x.db"],
        ["--uri sqlite:///nowhere/x.db: no tracking store there"],
    ),
    "tracking server that does not answer": (
        lambda m: [
            f"models:/{REGISTERED}/1",
            "-i",
            m.csv.name,
            "--uri",
            f"http://bob:hunter2pw@127.0.0.1:{free_port()}",
        ],  # nothing listens there
        ["cannot reach the MLflow tracking server at http://bob:***@127.0.0.1:"],
    ),
    "missing input file": (lambda m: [m.run_id, "-i", "absent.csv"], ["--input absent.csv: no such file"]),
    "unsupported input extension": (
        lambda m: [m.run_id, "-i", _write(m, "rows.txt", "a\n")],
        ["--input rows.txt: unsupported extension '.txt'; expected .csv, .jsonl"],
    ),
    "unsupported output extension": (
        lambda m: [m.run_id, "-i", m.csv.name, "-o", "out.xlsx"],
        ["--output out.xlsx: unsupported extension '.xlsx'"],
    ),
    "output over the input": (lambda m: [m.run_id, "-i", m.csv.name, "-o", str(m.csv)], ["is the input file"]),
    "empty file": (lambda m: [m.run_id, "-i", _write(m, "empty.csv", "")], ["--input empty.csv: the file is empty"]),
    "header only": (
        lambda m: [m.run_id, "-i", _write(m, "header.csv", "sentence1,sentence2\n")],
        ["--input header.csv: no rows (columns: sentence1, sentence2)"],
    ),
    "malformed JSON Lines": (
        lambda m: [m.run_id, "-i", _write(m, "bad.jsonl", '{"sentence1": \n')],
        ["--input bad.jsonl: cannot read it as JSON Lines"],
    ),
    "missing text columns": (
        lambda m: [m.run_id, "-i", _write(m, "texts.csv", "idx,text\n1,hello\n")],
        ["--input texts.csv: missing text column(s) sentence1, sentence2", "the file has: idx, text", "--text-columns"],
    ),
    "text columns option of the wrong length": (
        lambda m: [m.run_id, "-i", m.csv.name, "--text-columns", "sentence1"],
        ["--text-columns sentence1: the model reads 2 text column(s)"],
    ),
    "model that does not say its text columns": (
        lambda m: [str(m.plain), "-i", m.csv.name],
        ["does not record its text columns; name them with --text-columns", "has: idx, sentence1, sentence2, label"],
    ),
    "a card that is not JSON": (
        lambda m: [_with_card(m, "torn-card", '{"text_columns": ['), "-i", m.csv.name],
        ["xp.json is not valid JSON"],
    ),
    "a card xp did not write": (
        lambda m: [_with_card(m, "odd-card", '{"text_columns": "sentence1"}'), "-i", m.csv.name],
        ["recorded text_columns should be a list of strings, got 'sentence1'"],
    ),
    "probabilities of a regression model": (
        lambda m: [str(m.regression), "-i", m.csv.name, "--probabilities"],
        ["--probabilities:", "is a regression model"],
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_mistakes_are_one_clear_line(models, mistake):
    arguments, fragments = MISTAKES[mistake]
    done = predict(models, *arguments(models))

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ")
    for fragment in fragments(models) if callable(fragments) else fragments:
        assert fragment in error


def test_a_device_the_machine_lacks_is_refused(models):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = predict(models, models.run_id, "-i", models.csv.name, "--device", "cuda")

    assert done.returncode == 2
    assert "error: --device cuda: this machine has no CUDA device" in done.stderr
