"""The Hugging Face course, chapter 7, "Summarization", with a hand-written training loop: the
reference xp's sequence-to-sequence runs are measured against.

As the course: the documents tokenized to `--max-length` tokens and the summaries to
`--max-target-length` (`text_target=`), `DataCollatorForSeq2Seq(tokenizer, model=model)`, AdamW, a
linear schedule without warmup, no gradient clipping; after training, `generate` for each
validation batch, the generations and references decoded without special tokens, a sentence a
line, scored with ROUGE-1/2/L/Lsum (F-measures, in percent). Differences, each needed to run here
and to compare like with like:
- the data are SciTLDR's JSON Lines (train.jsonl, dev.jsonl): a paper's `source` is a list of
  sentences, joined by spaces; its `target` a list of reference TLDRs, the first trained on, and
  every one scored against (each generation scores its best reference), as xp's `seq2seq` task does
  (the course's data has one reference a row);
- the model is an encoder-decoder warm-started from two copies of `--checkpoint`
  (`EncoderDecoderModel.from_encoder_decoder_pretrained`; the course's mT5 cannot be downloaded
  here), its decoder started by [CLS] and ended by [SEP]; the summaries' own leading [CLS] is left
  out of the labels (the decoder starts with it), as xp does for a BERT-like tokenizer;
- ROUGE is Google's rouge-score package itself, the mean F-measure over papers (evaluate's rouge
  module needs the hub, and its bootstrap "mid" is a resampled estimate of that mean); sentences
  are split at ., ! and ? before white space (nltk's punkt model needs a download);
- greedy generation of at most `--max-new-tokens` tokens (the course's mT5 generation config);
- the loop is the course's without Accelerate, as chapter 3's: one process, full precision; the
  evaluation runs once, after training; nothing is saved or pushed;
- `set_seed` and a seeded DataLoader generator, so a run is repeatable and sees the batches xp
  sees with the same seed; `--max-steps` stops early, for timing.
"""

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch
from datasets import load_dataset
from rouge_score import rouge_scorer
from torch.optim import AdamW
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, EncoderDecoderModel, get_scheduler, set_seed

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="a folder of train.jsonl and dev.jsonl (SciTLDR)")
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--max-steps", type=int, default=None)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--lr", type=float, default=5e-5)
parser.add_argument("--max-length", type=int, default=256, help="the document's tokens")
parser.add_argument("--max-target-length", type=int, default=64)
parser.add_argument("--max-new-tokens", type=int, default=64)
parser.add_argument("--metrics-out", default=None)
args = parser.parse_args()

set_seed(args.seed)
checkpoint = args.checkpoint
tokenizer = AutoTokenizer.from_pretrained(checkpoint)
data = Path(args.data)
raw_datasets = load_dataset(
    "json", data_files={"train": str(data / "train.jsonl"), "validation": str(data / "dev.jsonl")}
)


def preprocess_function(examples):
    documents = [" ".join(sentences) for sentences in examples["source"]]
    model_inputs = tokenizer(documents, max_length=args.max_length, truncation=True, return_token_type_ids=False)
    # +1: the [CLS] the tokenizer puts first, which the decoder starts with and is not learnt.
    labels = tokenizer(
        text_target=[references[0] for references in examples["target"]],
        max_length=args.max_target_length + 1,
        truncation=True,
    )
    model_inputs["labels"] = [ids[1:] if ids[0] == tokenizer.cls_token_id else ids for ids in labels["input_ids"]]
    return model_inputs


tokenized_datasets = raw_datasets.map(
    preprocess_function, batched=True, remove_columns=raw_datasets["train"].column_names
)
tokenized_datasets.set_format("torch")

model = EncoderDecoderModel.from_encoder_decoder_pretrained(checkpoint, checkpoint)
for config in (model.config, model.generation_config):
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.eos_token_id = tokenizer.sep_token_id
    config.pad_token_id = tokenizer.pad_token_id
model.config.vocab_size = model.config.decoder.vocab_size

data_collator = DataCollatorForSeq2Seq(tokenizer, model=model)
train_dataloader = DataLoader(
    tokenized_datasets["train"],
    shuffle=True,
    collate_fn=data_collator,
    batch_size=args.batch_size,
    generator=torch.Generator().manual_seed(args.seed),
)
eval_dataloader = DataLoader(tokenized_datasets["validation"], collate_fn=data_collator, batch_size=args.batch_size)

optimizer = AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
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


def sentences_on_lines(text):
    return "\n".join(part for part in re.split(r"(?<=[.!?])\s+", text.strip()) if part)


model.eval()
generations = []
for batch in eval_dataloader:
    with torch.no_grad():
        generated_tokens = model.generate(
            batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            max_new_tokens=args.max_new_tokens,
            num_beams=1,
        )
    generations += [text.strip() for text in tokenizer.batch_decode(generated_tokens.cpu(), skip_special_tokens=True)]

scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
totals = {name: [] for name in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
for generation, references in zip(generations, raw_datasets["validation"]["target"], strict=True):
    best = scorer.score_multi([sentences_on_lines(ref) for ref in references], sentences_on_lines(generation))
    for name in totals:
        totals[name].append(best[name].fmeasure)
metrics = {f"eval_{name}": float(np.mean(values) * 100) for name, values in totals.items()}
print({name: round(value, 4) for name, value in metrics.items()})
if args.metrics_out:
    with open(args.metrics_out, "w") as file:
        json.dump(metrics, file)
