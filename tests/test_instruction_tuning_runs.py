"""Instruction tuning of a causal language model end to end, on the SciTLDR slice the repository
ships (paper titles rendered as "Summarize the paper titled: ..." prompts), with a tiny GPT-2 built
from a config and MiniLM's tokenizer (no causal checkpoint ships): the loss counts exactly the
response tokens; every runner trains, logs the loss and the perplexity, and keeps each
evaluation's generated samples as a table; the test split's prompts are all generated for; short
rows pack; a tokenizer without a pad token is handled and said; a LoRA adapter trains, and its
MLflow model generates as `xp predict` does."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.experiment_files import run_in_process, write_changed
from tests.experiment_files import xp_offline as xp
from tests.mlflow_helpers import runs_in, sqlite_store

SCITLDR = Path(__file__).resolve().parent / "data" / "scitldr"
RUNNERS = ("trainer", "loop", "accelerate")
# Titles, short enough for a tiny model's 128 positions: the abstracts are for the example.
TEMPLATE = "Summarize the paper titled: {instruction}\nTL;DR: "


def causal_experiment(folder: Path, checkpoint: Path, **changes: dict) -> Path:
    """Titles as prompts, TLDRs as responses, cut at 96 tokens; 8 steps of 8 rows, evaluating
    at steps 4 and 8; 4 samples generated (at most 6 new tokens) at each evaluation."""
    document = {
        "experiment": {"seed": 0, "output_dir": str(folder / "outputs")},
        "task": {"use": "instruction_tuning", "template": TEMPLATE, "max_new_tokens": 6, "samples": 4},
        "dataset": {
            "use": "hf",
            "path": str(SCITLDR),
            "text_columns": ["title"],
            "label_column": "target",
            "test_split": "test",
            "max_rows": {"train": 64, "eval": 12, "test": 5},
        },
        "tokenizer": {"use": "auto", "max_length": 96},
        "collator": {"use": "dynamic_padding"},
        "model": {"use": "auto", "checkpoint": str(checkpoint)},
        "optimizer": {"use": "adamw", "lr": 3e-3},
        "scheduler": {"use": "constant"},
        "metrics": {"use": ["perplexity"]},
        "runner": {
            "use": "loop",
            "max_steps": 8,
            "batch_size": 8,
            "logging_steps": 2,
            "eval_strategy": "steps",
            "eval_steps": 4,
            "progress_bar": False,
        },
        "hardware": {"device": "cpu"},
        "tracking": {"enabled": False},
    }
    return write_changed(folder / "causal.toml", document, changes)


def tiny_gpt2(folder: Path, minilm_path: Path, pad: bool = True) -> Path:
    """A tiny random GPT-2 (width 32, two layers) with MiniLM's WordPiece tokenizer ([CLS] opens,
    [SEP] ends a text); `pad=False` saves the tokenizer without a pad token, as GPT-2's has none."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_path, model_max_length=128)
    if not pad:
        tokenizer.pad_token = None
    tokenizer.save_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory, minilm_path) -> Path:
    return tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"), minilm_path)


def test_the_loss_counts_the_response_tokens_only_as_a_hand_computed_loss_does(gpt2):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xp_plugins.tasks.instruction_tuning import instruction_tuning

    tokenizer, model = AutoTokenizer.from_pretrained(gpt2), AutoModelForCausalLM.from_pretrained(gpt2).eval()
    task = instruction_tuning(template=TEMPLATE)
    batch = {"title": [["A first sentence.", "A second."], ["Short."]], "label": ["the summary", "tldr here"]}
    options = {"truncation": True, "max_length": 96, "padding": False}
    encoded = task.encode(batch, tokenizer=tokenizer, text_columns=["title"], options=options, split="train")
    [ids, labels] = encoded["input_ids"][0], encoded["labels"][0]
    prompt = tokenizer("Summarize the paper titled: A first sentence. A second.\nTL;DR: ", add_special_tokens=False)[
        "input_ids"
    ]
    response = tokenizer("the summary", add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
    assert ids == prompt + response  # the tokenizer has no start token: nothing before the prompt
    assert labels == [-100] * len(prompt) + response
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    # By hand: each response token predicted from the tokens before it, nothing else counted.
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    first = len(prompt)
    by_hand = -sum(log_probs[position - 1, ids[position]] for position in range(first, len(ids))) / len(response)
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-6)
    # What evaluation keeps of each row, for the perplexity: its summed loss and its token count.
    from xp_plugins.perplexity_metric import Perplexity

    padded = [labels, encoded["labels"][1] + [-100] * (len(ids) - len(encoded["labels"][1]))]
    rows = [ids, encoded["input_ids"][1] + [0] * (len(ids) - len(encoded["input_ids"][1]))]
    with torch.no_grad():
        batch_logits = model(input_ids=torch.tensor(rows)).logits
    kept, counts = task.decode((batch_logits,), labels=torch.tensor(padded))
    assert kept[0, 0] == pytest.approx(float(by_hand) * len(response), rel=1e-5)
    assert counts.tolist() == [len(response), len(tokenizer("tldr here", add_special_tokens=False)["input_ids"]) + 1]
    expected = math.exp(float(kept[:, 0].sum()) / float(counts.sum()))
    assert Perplexity().compute(kept.numpy(), None) == {"perplexity": pytest.approx(expected)}


def test_without_a_template_the_tokenizers_chat_template_renders_the_prompt_else_alpaca(gpt2):
    from transformers import AutoTokenizer

    from xp_plugins.tasks.prompts import PromptFormat

    tokenizer = AutoTokenizer.from_pretrained(gpt2)
    texts = [["Summarize this."], ["An abstract."]]
    alpaca = PromptFormat(None, "Be brief.").render(texts, tokenizer)
    assert alpaca == ["Be brief.\n\n### Instruction:\nSummarize this.\n\n### Input:\nAn abstract.\n\n### Response:\n"]
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    chat = PromptFormat(None, "Be brief.").render(texts, tokenizer)
    assert chat == ["<system>Be brief.</system><user>Summarize this.\n\nAn abstract.</user><assistant>"]
    # The file's template wins over both.
    assert PromptFormat("{system} {instruction}: {input} =>", "Be brief.").render(texts, tokenizer) == [
        "Be brief. Summarize this.: An abstract. =>"
    ]


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, gpt2):
    results = {}
    for runner in RUNNERS:
        folder = tmp_path_factory.mktemp(f"causal-{runner}")
        results[runner] = run_in_process(causal_experiment(folder, gpt2, runner={"use": runner}))
    return results


@pytest.mark.parametrize("run", RUNNERS)
def test_every_runner_logs_loss_and_perplexity_and_generates_samples_at_each_evaluation(short_runs, run):
    result = short_runs[run]
    assert set(result.eval_metrics) == {"eval_loss", "eval_perplexity"}
    # Perplexity weighs every response token once; the loss is a mean of the batches' means.
    assert result.eval_metrics["eval_perplexity"] == pytest.approx(math.exp(result.eval_metrics["eval_loss"]), rel=0.1)
    for step in (4, 8):
        samples = json.loads((result.output_dir / "evaluations" / f"step-{step}" / "samples.json").read_text())
        assert samples["columns"] == ["input", "reference", "generation"]
        assert len(samples["data"]) == 4
        assert all(
            row[0].startswith("Summarize the paper titled: ") and row[0].endswith("\nTL;DR: ")
            for row in samples["data"]
        )
        assert all(row[1] for row in samples["data"])  # the first TLDR of each paper
    assert [point for point, _ in result.curves.evaluations] == [4, 8]


@pytest.mark.parametrize("run", RUNNERS)
def test_every_test_prompt_is_generated_for(short_runs, run):
    result = short_runs[run]
    generated = json.loads((result.output_dir / "generations.json").read_text())
    assert len(generated["data"]) == 5
    assert set(result.test_metrics) == {"test_loss", "test_perplexity"}
    assert result.predictions_path is None  # the generations are the table


def test_short_rows_pack_into_full_sequences(tmp_path, gpt2):
    from tracker.api import load
    from tracker.recipe import Builder, build_tokenizer, load_data
    from tracker.registry import load_registry

    path = causal_experiment(tmp_path, gpt2, task={"packing": True}, tokenizer={"max_length": 64})
    registry = load_registry()
    experiment = load(path, (), registry)
    build = Builder(experiment, registry)
    data = load_data(experiment, registry, build)
    encoder = build_tokenizer(build, experiment)
    encoded = encoder.encode(data)
    lengths = [len(ids) for ids in encoded["train"].with_format(None)["input_ids"]]
    assert len(lengths) < len(data.splits["train"])
    assert set(lengths[:-1]) == {64} and lengths[-1] <= 64
    # Validation rows stay whole: one per row, each evaluated as itself.
    assert len(encoded["eval"]) == len(data.splits["eval"])
    note = data.task.encoding_note(data, encoded, encoder.tokenizer)
    assert f"{len(data.splits['train'])} training rows packed into {len(lengths)} sequences" in note


def test_a_tokenizer_without_a_pad_token_pads_with_its_end_token_and_says_so(tmp_path, minilm_path):
    checkpoint = tiny_gpt2(tmp_path / "no-pad", minilm_path, pad=False)
    path = causal_experiment(tmp_path, checkpoint, runner={"max_steps": 2, "eval_steps": 2})
    done = xp(tmp_path, "run", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    assert "the tokenizer has no pad token: it pads with its end token '[SEP]' (masked from the loss)" in done.stderr


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Summarize: {abstract}", "[task] template: names {abstract}: a template's fields are {instruction}"),
        (
            "{instruction}\n{input}",
            "[task] template: names {input}, the second text column, but [dataset] text_columns",
        ),
        ("Summarize: {instruction", "[task] template: cannot be read as a template"),
    ],
)
def test_a_template_naming_what_the_data_does_not_give_is_a_problem_before_training(tmp_path, gpt2, template, expected):
    done = xp(tmp_path, "run", str(causal_experiment(tmp_path, gpt2, task={"template": template})))
    assert done.returncode == 2, done.stderr[-4000:]
    assert expected in done.stderr


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, gpt2):
    """A tracked LoRA run on the tiny GPT-2, its model saved and logged."""
    folder = tmp_path_factory.mktemp("causal-lora")
    store = sqlite_store(folder)
    path = causal_experiment(
        folder,
        gpt2,
        adapter={"use": "lora", "r": 4},
        runner={"save_model": True},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = xp(folder, "run", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = runs_in(store)
    return folder, store, run, done.stderr


def test_a_lora_adapter_trains_a_small_share_and_its_mlflow_model_generates_as_xp_predict(lora_run):
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    folder, store, run, summary = lora_run
    assert int(run.data.params["model.trainable_parameters"]) < int(run.data.params["model.parameters"]) / 10
    assert "LoRA r=4" in summary
    history = MlflowClient(store).get_metric_history(run.info.run_id, "eval/perplexity")
    assert [point.step for point in history] == [4, 8]
    rows = [json.loads(line) for line in (SCITLDR / "test.jsonl").read_text(encoding="utf-8").splitlines()[:3]]
    table = folder / "papers.jsonl"
    pd.DataFrame([{"title": row["title"]} for row in rows]).to_json(table, orient="records", lines=True)
    done = xp(
        folder, "predict", run.info.run_id, "--input", str(table), "--uri", store, "--set", "task.min_new_tokens=2"
    )
    assert done.returncode == 0, done.stderr[-4000:]
    predicted = pd.read_json(folder / "papers.predictions.jsonl", lines=True)
    assert list(predicted.columns) == ["title", "generation"]
    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    frame = pd.DataFrame([{"title": row["title"]} for row in rows])
    reloaded = model.predict(frame, params={"min_new_tokens": 2})["generation"].tolist()
    assert reloaded == predicted["generation"].tolist()
