"""The Hugging Face course, chapter 3, "Fine-tuning a model with the Trainer API", as the course
writes it. The reference xp's `trainer` runner is measured against.

Differences from the course, each needed to run here and to compare like with like:
- the data and checkpoint are arguments (no hub here: the MRPC folder bench/run.py finds, packaged MiniLM);
- `seed`, `per_device_*_batch_size=8` and `num_train_epochs` spelled out (the Trainer's defaults);
- `--max-steps` stops early, for timing; evaluation each epoch as in the course's second version;
- accuracy and F1 come from scikit-learn: `evaluate.load("glue", "mrpc")` needs the hub.
"""

import argparse
import json

import numpy as np
from datasets import load_dataset
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="GLUE MRPC in hub layout (bench/run.py passes it)")
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--max-steps", type=int, default=-1)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--output-dir", default="outputs/bench-test-trainer")
parser.add_argument("--metrics-out", default=None)
args = parser.parse_args()

raw_datasets = load_dataset(args.data)
checkpoint = args.checkpoint
tokenizer = AutoTokenizer.from_pretrained(checkpoint)


def tokenize_function(example):
    return tokenizer(example["sentence1"], example["sentence2"], truncation=True)


tokenized_datasets = raw_datasets.map(tokenize_function, batched=True)
data_collator = DataCollatorWithPadding(tokenizer=tokenizer)


def compute_metrics(eval_preds):
    logits, labels = eval_preds
    predictions = np.argmax(logits, axis=-1)
    return {"accuracy": accuracy_score(labels, predictions), "f1": f1_score(labels, predictions)}


training_args = TrainingArguments(
    args.output_dir,
    eval_strategy="epoch",
    seed=args.seed,
    per_device_train_batch_size=8,
    per_device_eval_batch_size=8,
    num_train_epochs=args.epochs,
    max_steps=args.max_steps,
)
model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)

trainer = Trainer(
    model,
    training_args,
    train_dataset=tokenized_datasets["train"],
    eval_dataset=tokenized_datasets["validation"],
    data_collator=data_collator,
    processing_class=tokenizer,
    compute_metrics=compute_metrics,
)
trainer.train()

metrics = trainer.evaluate()
print(metrics)
if args.metrics_out:
    with open(args.metrics_out, "w") as file:
        json.dump(metrics, file)
