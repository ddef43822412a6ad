"""The Hugging Face course, chapter 3, "A full training": the hand-written loop, as the course
writes it. The reference xp's `loop` and `accelerate` runners are measured against.

Differences from the course, each needed to run here and to compare like with like:
- the data and checkpoint are arguments (no hub here: the MRPC folder bench/run.py finds, packaged MiniLM);
- `set_seed` and a seeded DataLoader generator, so a run is repeatable and sees the same
  batches as xp with the same seed;
- `--max-steps` stops early, for timing;
- accuracy and F1 come from scikit-learn: `evaluate.load("glue", "mrpc")` needs the hub.
"""

import argparse
import json

import torch
from datasets import load_dataset
from sklearn.metrics import accuracy_score, f1_score
from torch.optim import AdamW
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    get_scheduler,
    set_seed,
)

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="GLUE MRPC in hub layout (bench/run.py passes it)")
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--max-steps", type=int, default=None)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--metrics-out", default=None)
args = parser.parse_args()

set_seed(args.seed)
raw_datasets = load_dataset(args.data)
checkpoint = args.checkpoint
tokenizer = AutoTokenizer.from_pretrained(checkpoint)


def tokenize_function(example):
    return tokenizer(example["sentence1"], example["sentence2"], truncation=True)


tokenized_datasets = raw_datasets.map(tokenize_function, batched=True)
data_collator = DataCollatorWithPadding(tokenizer=tokenizer)

tokenized_datasets = tokenized_datasets.remove_columns(["sentence1", "sentence2", "idx"])
tokenized_datasets = tokenized_datasets.rename_column("label", "labels")
tokenized_datasets.set_format("torch")

model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)

train_dataloader = DataLoader(
    tokenized_datasets["train"],
    shuffle=True,
    batch_size=8,
    collate_fn=data_collator,
    generator=torch.Generator().manual_seed(args.seed),
)
eval_dataloader = DataLoader(tokenized_datasets["validation"], batch_size=8, collate_fn=data_collator)

optimizer = AdamW(model.parameters(), lr=5e-5)

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

model.eval()
predictions, references = [], []
for batch in eval_dataloader:
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.no_grad():
        outputs = model(**batch)
    logits = outputs.logits
    predictions += torch.argmax(logits, dim=-1).tolist()
    references += batch["labels"].tolist()

metrics = {"eval_accuracy": accuracy_score(references, predictions), "eval_f1": f1_score(references, predictions)}
print(metrics)
if args.metrics_out:
    with open(args.metrics_out, "w") as file:
        json.dump(metrics, file)
