"""LoRA adapters in real runs ([adapter] use = "lora"): on every runner a run trains a fraction of
the weights and leaves the base model's own unchanged, logs and says both counts, saves the
adapter alone (and the merged model when asked); its MLflow model loads in a fresh process on
the base model it records, or on one it is pointed to, and predicts as `xp predict` does, for
every task, on two processes too; a layer name no module has stops the run before it starts; a
sweep varies the adapter's keys. Real `xp` processes, a real SQLite store, the tiny BERT."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mlflow_helpers import DATA, run_quickstart, runs_in, sqlite_store, xp_command
from tests.test_question_answering_runs import qa_experiment
from tests.test_sweep import states, study, sweep_file, sweep_runs, xp
from tests.test_token_classification_runs import ner_experiment

LORA = ('adapter.use="lora"', "adapter.r=4", "adapter.dropout=0.0", "optimizer.lr=1e-2", "runner.save_model=true")


@pytest.fixture
def base_model(tmp_path, tiny_checkpoint) -> Path:
    """A copy of the tiny BERT the test may move away: the base model an adapter records."""
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "base"))


def tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    [weights] = folder.glob("*.safetensors")
    return load_file(weights)


def params_of(store: str) -> dict[str, str]:
    [run] = runs_in(store)
    assert run.info.status == "FINISHED"
    return run.data.params


@pytest.mark.parametrize("runner", ["loop", "trainer", "accelerate"])
def test_a_lora_run_trains_a_few_weights_and_leaves_the_base_models_unchanged(tmp_path, base_model, runner):
    store = sqlite_store(tmp_path)
    done = run_quickstart(
        tmp_path, base_model, store, f'runner.use="{runner}"', *LORA, "adapter.save_merged=true", quiet=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # r = 4 on query and value of 2 layers of width 32: 4 x (4 x 32 + 32 x 4); and the 2-class head.
    [model_line] = model_lines(done)
    assert model_line.endswith(
        ", 996.7K parameters, 1.1K trained (0.11%: LoRA r=4 on the attention projections), on cpu in fp32"
    )

    params = params_of(store)
    total, trained = int(params["model.parameters"]), int(params["model.trainable_parameters"])
    assert 0 < trained < 0.05 * total
    assert params["adapter.use"] == "lora" and params["adapter.r"] == "4"

    [run_folder] = (tmp_path / "outputs").iterdir()
    adapter = tensors(run_folder / "model")
    assert adapter and all("lora_" in name or "classifier" in name for name in adapter), sorted(adapter)
    merged, base = tensors(run_folder / "merged-model"), tensors(base_model)
    assert (run_folder / "model" / "adapter_model.safetensors").stat().st_size < 0.05 * sum(
        path.stat().st_size for path in (run_folder / "merged-model").glob("*.safetensors")
    )
    # The merged model is the base model plus the trained adapter: every weight LoRA did not
    # adapt is the base model's own, to the bit; the adapted projections moved.
    for name, value in base.items():
        in_merged = f"bert.{name}" if f"bert.{name}" in merged else name
        adapted = name.endswith(("query.weight", "value.weight"))
        assert adapted != bool((merged[in_merged] == value).all()), name
    assert json.loads((run_folder / "model" / "xp.json").read_text())["adapter"] == "lora"
    assert json.loads((run_folder / "merged-model" / "xp.json").read_text())["adapter"] is None


def model_lines(done: subprocess.CompletedProcess) -> list[str]:
    """The console's model phase line (not the summary's line naming the logged model)."""
    lines = (done.stdout + done.stderr).splitlines()
    return [line for line in lines if line.startswith("model ") and " parameters, " in line]


def rows_file(folder: Path, rows: list[dict]) -> Path:
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def xp_predicted(folder: Path, store: str, run_id: str, rows: Path, *more: str) -> subprocess.CompletedProcess:
    out = folder / "predicted.jsonl"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        xp_command("predict", run_id, "--uri", store, "-i", str(rows), "-o", str(out), *more),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    done.stdout = out.read_text(encoding="utf-8") if out.is_file() else ""
    return done


PYFUNC = """
import json, sys
import mlflow, pandas
mlflow.set_tracking_uri(sys.argv[1])
config = json.loads(sys.argv[3])
try:
    model = mlflow.pyfunc.load_model(sys.argv[2], model_config=config or None)
except Exception as error:
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(3)
print(model.predict(pandas.read_json(sys.argv[4], lines=True)).to_json(orient="records", lines=True), end="")
"""


def pyfunc_predicted(folder: Path, store: str, run_id: str, rows: Path, **config: str) -> subprocess.CompletedProcess:
    """The run's MLflow model loaded with `mlflow.pyfunc.load_model` in a fresh process, with
    `config` as its model_config, predicting `rows`: JSON Lines out; exit code 3 when it cannot load."""
    return subprocess.run(
        [sys.executable, "-c", PYFUNC, store, f"runs:/{run_id}/model", json.dumps(config), str(rows)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def the_same_predictions(by_xp: subprocess.CompletedProcess, by_pyfunc: subprocess.CompletedProcess) -> list[dict]:
    """xp predict writes the input's columns and the predicted ones; the pyfunc model the predicted ones."""
    assert by_xp.returncode == 0, by_xp.stderr[-3000:]
    assert by_pyfunc.returncode == 0, by_pyfunc.stderr[-3000:]
    predicted = [json.loads(line) for line in by_pyfunc.stdout.splitlines()]
    written = [json.loads(line) for line in by_xp.stdout.splitlines()]
    assert predicted and [{key: row[key] for key in predicted[0]} for row in written] == predicted
    return predicted


def test_an_adapters_mlflow_model_loads_on_its_recorded_base_or_one_it_is_pointed_to(tmp_path, base_model):
    store = sqlite_store(tmp_path)
    done = run_quickstart(tmp_path, base_model, store, *LORA)
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = runs_in(store)
    run_id = run.info.run_id
    with (DATA / "validation.csv").open(newline="", encoding="utf-8") as table:
        pairs = [{"sentence1": row["sentence1"], "sentence2": row["sentence2"]} for row in csv.DictReader(table)][:8]
    rows = rows_file(tmp_path, pairs)

    by_xp = xp_predicted(tmp_path, store, run_id, rows)
    expected = the_same_predictions(by_xp, pyfunc_predicted(tmp_path, store, run_id, rows))

    # Elsewhere, where the base model is not where the run found it: one line says so, and
    # where the loader names a copy, the model predicts the same.
    moved = base_model.rename(tmp_path / "moved-base")
    refused = xp_predicted(tmp_path, store, run_id, rows)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f'trained on the base model "{base_model}", which is not here' in refused.stderr
    assert xp_predicted(tmp_path, store, run_id, rows, "--base-model", str(moved)).stdout == by_xp.stdout
    missing = pyfunc_predicted(tmp_path, store, run_id, rows)
    assert missing.returncode == 3
    assert f'"{base_model}", which is not here' in missing.stderr.strip().splitlines()[-1]
    pointed = pyfunc_predicted(tmp_path, store, run_id, rows, base_model=str(moved))
    assert the_same_predictions(by_xp, pointed) == expected


@pytest.mark.parametrize(
    ("experiment", "rows"),
    [
        (ner_experiment, [{"tokens": ["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Berlin"]}]),
        (qa_experiment, [{"question": "Where did they meet?", "context": "They met in Berlin in 2019."}]),
    ],
    ids=["token_classification", "question_answering"],
)
def test_every_task_trains_an_adapter_on_two_processes_and_its_mlflow_model_predicts_as_xp_predict(
    tmp_path, tiny_checkpoint, experiment, rows
):
    store = sqlite_store(tmp_path)
    file = experiment(
        tmp_path,
        tiny_checkpoint,
        adapter={"use": "lora"},
        runner={"use": "accelerate", "max_steps": 2, "save_model": True, "eval_strategy": "no"},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = subprocess.run(
        xp_command("run", "-q", "--processes", "2", str(file)), cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    params = params_of(store)
    assert int(params["model.trainable_parameters"]) < 0.05 * int(params["model.parameters"])
    run_id = runs_in(store)[0].info.run_id
    table = rows_file(tmp_path, rows)
    the_same_predictions(xp_predicted(tmp_path, store, run_id, table), pyfunc_predicted(tmp_path, store, run_id, table))


def test_a_layer_name_no_module_has_exits_2_naming_those_there_are_and_starts_no_run(tmp_path, tiny_checkpoint):
    store = sqlite_store(tmp_path)
    done = run_quickstart(tmp_path, tiny_checkpoint, store, *LORA, 'adapter.target_modules=["qurey", "value"]')
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert (
        '[adapter] target_modules: "qurey" names no module of BertForSequenceClassification (did you mean "query"?); '
        'its layers: "classifier", "dense", "key", "position_embeddings", "query", "token_type_embeddings", '
        '"value", "word_embeddings"'
    ) in done.stderr
    assert runs_in(store) == []


def test_a_sweep_varies_an_adapters_keys_like_any_other(tmp_path, tiny_checkpoint):
    lora = {"adapter": {"use": "lora"}}
    bad = sweep_file(tmp_path, tiny_checkpoint, {"adapter.r": [0, 4], "adapter.bias": ["some"]}, sections=lora)
    refused = xp(tmp_path, "sweep", str(bad))
    assert refused.returncode == 2
    assert '"adapter.r": 0: [adapter] r: expected an integer >= 1, got 0' in refused.stderr
    assert '"adapter.bias": "some": [adapter] bias: expected one of "none", "all", "lora_only"' in refused.stderr

    file = sweep_file(tmp_path, tiny_checkpoint, {"adapter.r": [2, 4]}, epochs=1, sections=lora)
    done = xp(tmp_path, "sweep", str(file))
    assert done.returncode == 0, done.stderr[-3000:]
    assert states(study(tmp_path).trials) == ["COMPLETE", "COMPLETE"]
    _, trials = sweep_runs(tmp_path)
    trained = {run.data.params["adapter.r"]: int(run.data.params["model.trainable_parameters"]) for run in trials}
    # r = 2 or 4 on query and value of 2 layers of width 32, and the same head
    assert trained["4"] - trained["2"] == 4 * (2 * 32 + 32 * 2)
