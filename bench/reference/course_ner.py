"""The Hugging Face course, chapter 7, "Token classification", with a hand-written training loop:
the reference xp's token-classification runs are measured against.

As the course: words tokenized with `is_split_into_words`, labels aligned with `word_ids()`,
`DataCollatorForTokenClassification`, AutoModelForTokenClassification with id2label, AdamW, a
linear schedule without warmup, no gradient clipping, entity scores with seqeval. Differences,
each needed to run here and to compare like with like:
- the data are CoNLL files read here (no hub: `load_dataset("conll2003")` cannot run), tags in
  IOB2; the tag names are `O` then `B-`/`I-` of each entity type in sorted order, as xp orders them
  (the hub's order differs: the classifier's rows would start from other random values);
- a word's tag on its first sub-token and -100 on the rest, as `run_ner.py` does by default (the
  course's `align_labels_with_tokens` also tags the rest, `I-`; both score words the same way);
- `set_seed` and a seeded DataLoader generator, so a run is repeatable and sees the batches xp
  sees with the same seed; `--max-steps` stops early, for timing;
- seqeval is called directly: `evaluate.load("seqeval")` needs the hub.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from seqeval.metrics import accuracy_score, classification_report
from torch.optim import AdamW
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    get_scheduler,
    set_seed,
)

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="a folder of train.txt, valid.txt, test.txt (bench/run.py passes it)")
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--max-steps", type=int, default=None)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--lr", type=float, default=1e-4)
parser.add_argument("--metrics-out", default=None)
args = parser.parse_args()


def read_conll(path):
    """Sentences of a CoNLL file: the first column is the word, the last the tag."""
    sentences, words, tags = [], [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append({"tokens": words, "tags": tags})
            words, tags = [], []
            continue
        words.append(fields[0])
        tags.append(fields[-1])
    if words:
        sentences.append({"tokens": words, "tags": tags})
    return sentences


set_seed(args.seed)
files = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
raw = {split: read_conll(Path(args.data) / name) for split, name in files.items()}
entity_types = sorted({tag[2:] for sentence in raw["train"] for tag in sentence["tags"] if tag != "O"})
label_names = ["O", *(f"{prefix}-{kind}" for kind in entity_types for prefix in "BI")]
label2id = {name: i for i, name in enumerate(label_names)}
raw_datasets = DatasetDict(
    {
        split: Dataset.from_dict(
            {
                "tokens": [s["tokens"] for s in sentences],
                "ner_tags": [[label2id[tag] for tag in s["tags"]] for s in sentences],
            }
        )
        for split, sentences in raw.items()
    }
)

checkpoint = args.checkpoint
tokenizer = AutoTokenizer.from_pretrained(checkpoint)


def align_labels_with_tokens(labels, word_ids):
    new_labels = []
    current_word = None
    for word_id in word_ids:
        if word_id is None or word_id == current_word:
            new_labels.append(-100)  # special tokens, and a word's later sub-tokens
        else:
            new_labels.append(labels[word_id])
        current_word = word_id
    return new_labels


def tokenize_and_align_labels(examples):
    tokenized_inputs = tokenizer(examples["tokens"], truncation=True, is_split_into_words=True)
    tokenized_inputs["labels"] = [
        align_labels_with_tokens(labels, tokenized_inputs.word_ids(i)) for i, labels in enumerate(examples["ner_tags"])
    ]
    return tokenized_inputs


tokenized_datasets = raw_datasets.map(
    tokenize_and_align_labels, batched=True, remove_columns=raw_datasets["train"].column_names
)
data_collator = DataCollatorForTokenClassification(tokenizer=tokenizer)

model = AutoModelForTokenClassification.from_pretrained(
    checkpoint,
    id2label=dict(enumerate(label_names)),
    label2id=label2id,
)

train_dataloader = DataLoader(
    tokenized_datasets["train"],
    shuffle=True,
    batch_size=args.batch_size,
    collate_fn=data_collator,
    generator=torch.Generator().manual_seed(args.seed),
)
eval_dataloaders = {
    split: DataLoader(tokenized_datasets[split], batch_size=args.batch_size, collate_fn=data_collator)
    for split in ("validation", "test")
}

optimizer = AdamW(model.parameters(), lr=args.lr)

num_epochs = args.epochs
num_training_steps = args.max_steps or num_epochs * len(train_dataloader)
lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)

device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
model.to(device)

progress_bar = tqdm(range(num_training_steps))
step = 0
model.train()
for _epoch in range(num_epochs):
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


def postprocess(predictions, labels):
    """The course's: tag names of the words (labels not -100), per sentence."""
    predictions, labels = predictions.cpu().numpy(), labels.cpu().numpy()
    true_labels = [[label_names[l] for l in label if l != -100] for label in labels]  # noqa: E741
    true_predictions = [
        [label_names[p] for (p, l) in zip(prediction, label, strict=True) if l != -100]  # noqa: E741
        for prediction, label in zip(predictions, labels, strict=True)
    ]
    return true_labels, true_predictions


metrics = {}
model.eval()
for split, prefix in (("validation", "eval"), ("test", "test")):
    references, predicted = [], []
    for batch in eval_dataloaders[split]:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad():
            outputs = model(**batch)
        true_labels, true_predictions = postprocess(outputs.logits.argmax(dim=-1), batch["labels"])
        references += true_labels
        predicted += true_predictions
    report = classification_report(references, predicted, output_dict=True, zero_division=0)
    metrics |= {
        f"{prefix}_f1": float(report["micro avg"]["f1-score"]),
        f"{prefix}_precision": float(report["micro avg"]["precision"]),
        f"{prefix}_recall": float(report["micro avg"]["recall"]),
        f"{prefix}_accuracy": float(accuracy_score(references, predicted)),
    }
print({name: round(float(np.round(value, 4)), 4) for name, value in metrics.items()})
if args.metrics_out:
    with open(args.metrics_out, "w") as file:
        json.dump(metrics, file)
