"""The Hugging Face course, chapter 7, "Question answering", with a hand-written training loop:
the reference xp's extractive question-answering runs are measured against.

As the course: questions stripped, `tokenizer(question, context)` truncating the context only, to
384 tokens with a stride of 128, padded to the maximum length, its overflowing windows and offsets
kept; a training window's labels the answer's first and last tokens, or (0, 0) when the answer is
not wholly inside it; a validation window keeps its example's id and offsets only for the context;
`default_data_collator`, AutoModelForQuestionAnswering, AdamW at 2e-5, a linear schedule without
warmup, no gradient clipping; an answer is the best of the 20 best starts and ends of each window,
within the context, not ending before it starts and at most 30 tokens long. Differences, each
needed to run here and to compare like with like:
- the data are SQuAD-format JSON files (v1.1 or v2.0) read here into the hub's flat rows (no hub:
  `load_dataset("squad")` cannot run); an `is_impossible` question has no answers, as in squad_v2;
- SQuAD v2.0 as `run_qa.py` does it (utils_qa.py, `postprocess_qa_predictions`): an unanswerable
  question's windows are labelled (0, 0) (the course's code reads a first answer such a question
  lacks); an example's null score is the smallest `start_logits[0] + end_logits[0]` of its windows,
  and it is answered "" when that beats its best span's score by more than
  `--null-score-diff-threshold` (0.0), or when it has no span at all. This is done only when some
  question of train.json or dev.json has no answers: decided by the data, not by a flag that could
  be forgotten (on v1.1 data the course's post-processing runs unchanged);
- the loop is the course's without Accelerate, as chapter 3's: the model and the batches moved to
  the device by hand, one process, full precision (the course asks Accelerate for fp16); the
  evaluation runs once, after training (the course's evaluates, saves and pushes to the hub after
  every epoch): the benchmark reads the final scores, and nothing is saved;
- `--lr` and `--batch-size` (the course's 2e-5 and 8 by default), for the values xp's example uses;
- `set_seed` and a seeded DataLoader generator, so a run is repeatable and sees the batches xp
  sees with the same seed; `--max-steps` stops early, for timing;
- the scores are the official SQuAD v2.0 evaluation's (exact match and F1 in percent, over all
  questions and, where present, answerable and unanswerable ones apart), its functions copied below:
  `evaluate.load("squad")` needs the hub. On v1.1 data they equal the course's `squad` metric, but
  for gold answers that normalize to nothing, which v2.0's evaluation leaves out.
"""

import argparse
import collections
import json
import re
import string
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from torch.optim import AdamW
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    default_data_collator,
    get_scheduler,
    set_seed,
)

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="a folder of train.json, dev.json in SQuAD format (v1.1 or v2.0)")
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--max-steps", type=int, default=None)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--lr", type=float, default=2e-5)
parser.add_argument(
    "--max-length", type=int, default=384, help="a window's tokens (a smoke run's tiny model takes 128)"
)
parser.add_argument("--stride", type=int, default=128, help="tokens two windows share")
parser.add_argument("--null-score-diff-threshold", type=float, default=0.0)
parser.add_argument("--metrics-out", default=None)
args = parser.parse_args()


def read_squad(path):
    """A SQuAD-format file's questions as the hub's rows: id, title, context, question, answers."""
    rows = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for article in json.loads(Path(path).read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else qa["answers"]
                rows["id"].append(qa["id"])
                rows["title"].append(article.get("title", ""))
                rows["context"].append(paragraph["context"])
                rows["question"].append(qa["question"])
                rows["answers"].append(
                    {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]}
                )
    return rows


set_seed(args.seed)
files = {"train": "train.json", "validation": "dev.json"}
raw = {split: read_squad(Path(args.data) / name) for split, name in files.items()}
raw_datasets = DatasetDict({split: Dataset.from_dict(rows) for split, rows in raw.items()})
# SQuAD v2.0: some question has no answer, so the model may answer none
version_2_with_negative = any(not answers["text"] for rows in raw.values() for answers in rows["answers"])

checkpoint = args.checkpoint
tokenizer = AutoTokenizer.from_pretrained(checkpoint)

max_length = args.max_length
stride = args.stride


def preprocess_training_examples(examples):
    questions = [q.strip() for q in examples["question"]]
    inputs = tokenizer(
        questions,
        examples["context"],
        max_length=max_length,
        truncation="only_second",
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )

    offset_mapping = inputs.pop("offset_mapping")
    sample_map = inputs.pop("overflow_to_sample_mapping")
    answers = examples["answers"]
    start_positions = []
    end_positions = []

    for i, offset in enumerate(offset_mapping):
        sample_idx = sample_map[i]
        answer = answers[sample_idx]
        # An unanswerable question (SQuAD v2.0): label (0, 0), as run_qa.py does
        if len(answer["answer_start"]) == 0:
            start_positions.append(0)
            end_positions.append(0)
            continue
        start_char = answer["answer_start"][0]
        end_char = answer["answer_start"][0] + len(answer["text"][0])
        sequence_ids = inputs.sequence_ids(i)

        # Find the start and end of the context
        idx = 0
        while sequence_ids[idx] != 1:
            idx += 1
        context_start = idx
        while sequence_ids[idx] == 1:
            idx += 1
        context_end = idx - 1

        # If the answer is not fully inside the context, label is (0, 0)
        if offset[context_start][0] > start_char or offset[context_end][1] < end_char:
            start_positions.append(0)
            end_positions.append(0)
        else:
            # Otherwise it's the start and end token positions
            idx = context_start
            while idx <= context_end and offset[idx][0] <= start_char:
                idx += 1
            start_positions.append(idx - 1)

            idx = context_end
            while idx >= context_start and offset[idx][1] >= end_char:
                idx -= 1
            end_positions.append(idx + 1)

    inputs["start_positions"] = start_positions
    inputs["end_positions"] = end_positions
    return inputs


def preprocess_validation_examples(examples):
    questions = [q.strip() for q in examples["question"]]
    inputs = tokenizer(
        questions,
        examples["context"],
        max_length=max_length,
        truncation="only_second",
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )

    sample_map = inputs.pop("overflow_to_sample_mapping")
    example_ids = []

    for i in range(len(inputs["input_ids"])):
        sample_idx = sample_map[i]
        example_ids.append(examples["id"][sample_idx])

        sequence_ids = inputs.sequence_ids(i)
        offset = inputs["offset_mapping"][i]
        inputs["offset_mapping"][i] = [o if sequence_ids[k] == 1 else None for k, o in enumerate(offset)]

    inputs["example_id"] = example_ids
    return inputs


train_dataset = raw_datasets["train"].map(
    preprocess_training_examples,
    batched=True,
    remove_columns=raw_datasets["train"].column_names,
)
validation_dataset = raw_datasets["validation"].map(
    preprocess_validation_examples,
    batched=True,
    remove_columns=raw_datasets["validation"].column_names,
)

train_dataset.set_format("torch")
validation_set = validation_dataset.remove_columns(["example_id", "offset_mapping"])
validation_set.set_format("torch")

train_dataloader = DataLoader(
    train_dataset,
    shuffle=True,
    collate_fn=default_data_collator,
    batch_size=args.batch_size,
    generator=torch.Generator().manual_seed(args.seed),
)
eval_dataloader = DataLoader(validation_set, collate_fn=default_data_collator, batch_size=args.batch_size)

model = AutoModelForQuestionAnswering.from_pretrained(checkpoint)

optimizer = AdamW(model.parameters(), lr=args.lr)

num_train_epochs = args.epochs
num_training_steps = args.max_steps or num_train_epochs * len(train_dataloader)
lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)

device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
model.to(device)

progress_bar = tqdm(range(num_training_steps))
step = 0
model.train()
for _epoch in range(num_train_epochs):
    for batch in train_dataloader:
        batch = {k: v.to(device) for k, v in batch.items()}
        outputs = model(**batch)
        loss = outputs.loss
        loss.backward()

        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        progress_bar.update(1)
        step += 1
        if step == num_training_steps:
            break
    if step == num_training_steps:
        break


# The official SQuAD v2.0 evaluation (evaluate-v2.0.py), as huggingface/evaluate ships it in
# metrics/squad_v2/compute_score.py: normalize_answer, get_tokens, compute_exact and compute_f1 copied;
# get_raw_scores and make_eval_dict condensed to flat references, "exact" named "exact_match".
ARTICLES_REGEX = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return ARTICLES_REGEX.sub(" ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def get_tokens(s):
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold, a_pred):
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def squad_v2_scores(predictions, references):
    """Exact match and F1 in percent, over all questions, the answerable (HasAns_) and the unanswerable (NoAns_)."""
    preds = {p["id"]: p["prediction_text"] for p in predictions}
    exact_scores, f1_scores, has_ans = {}, {}, {}
    for reference in references:
        qid = reference["id"]
        has_ans[qid] = bool(reference["answers"]["text"])
        gold_answers = [t for t in reference["answers"]["text"] if normalize_answer(t)]
        if not gold_answers:
            # For unanswerable questions, only correct answer is empty string
            gold_answers = [""]
        a_pred = preds[qid]
        # Take max over all gold answers
        exact_scores[qid] = max(compute_exact(a, a_pred) for a in gold_answers)
        f1_scores[qid] = max(compute_f1(a, a_pred) for a in gold_answers)
    scores = {}
    for prefix, qid_list in (
        ("", list(exact_scores)),
        ("HasAns_", [k for k, v in has_ans.items() if v]),
        ("NoAns_", [k for k, v in has_ans.items() if not v]),
    ):
        if qid_list:
            scores[f"{prefix}exact_match"] = 100.0 * sum(exact_scores[k] for k in qid_list) / len(qid_list)
            scores[f"{prefix}f1"] = 100.0 * sum(f1_scores[k] for k in qid_list) / len(qid_list)
    return scores


n_best = 20
max_answer_length = 30


def compute_metrics(start_logits, end_logits, features, examples):
    example_to_features = collections.defaultdict(list)
    for idx, feature in enumerate(features):
        example_to_features[feature["example_id"]].append(idx)

    predicted_answers = []
    for example in tqdm(examples):
        example_id = example["id"]
        context = example["context"]
        answers = []
        null_score = None

        # Loop through all features associated with that example
        for feature_index in example_to_features[example_id]:
            start_logit = start_logits[feature_index]
            end_logit = end_logits[feature_index]
            offsets = features[feature_index]["offset_mapping"]

            # SQuAD v2.0: the null answer's score, the smallest over the example's features (utils_qa)
            feature_null_score = start_logit[0] + end_logit[0]
            if null_score is None or feature_null_score < null_score:
                null_score = feature_null_score

            start_indexes = np.argsort(start_logit)[-1 : -n_best - 1 : -1].tolist()
            end_indexes = np.argsort(end_logit)[-1 : -n_best - 1 : -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    # Skip answers that are not fully in the context
                    if offsets[start_index] is None or offsets[end_index] is None:
                        continue
                    # Skip answers with a length that is either < 0 or > max_answer_length
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue

                    answer = {
                        "text": context[offsets[start_index][0] : offsets[end_index][1]],
                        "logit_score": start_logit[start_index] + end_logit[end_index],
                    }
                    answers.append(answer)

        # Select the answer with the best score; SQuAD v2.0: none when the null answer beats it
        if len(answers) > 0:
            best_answer = max(answers, key=lambda x: x["logit_score"])
            if version_2_with_negative and null_score - best_answer["logit_score"] > args.null_score_diff_threshold:
                predicted_answers.append({"id": example_id, "prediction_text": ""})
            else:
                predicted_answers.append({"id": example_id, "prediction_text": best_answer["text"]})
        else:
            predicted_answers.append({"id": example_id, "prediction_text": ""})

    theoretical_answers = [{"id": ex["id"], "answers": ex["answers"]} for ex in examples]
    return squad_v2_scores(predicted_answers, theoretical_answers)


model.eval()
start_logits = []
end_logits = []
for batch in tqdm(eval_dataloader):
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.no_grad():
        outputs = model(**batch)

    start_logits.append(outputs.start_logits.cpu().numpy())
    end_logits.append(outputs.end_logits.cpu().numpy())

start_logits = np.concatenate(start_logits)
end_logits = np.concatenate(end_logits)
scores = compute_metrics(start_logits, end_logits, validation_dataset, raw_datasets["validation"])
metrics = {f"eval_{name}": value for name, value in scores.items()}  # as xp names them, and course_ner.py
print({name: round(float(np.round(value, 4)), 4) for name, value in metrics.items()})
if args.metrics_out:
    with open(args.metrics_out, "w") as file:
        json.dump(metrics, file)
