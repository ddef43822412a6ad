"""The Hugging Face course's way to use a fine-tuned model on new rows: `pipeline("text-classification",
model=<its folder>)` over the sentence pairs, the predictions written beside the rows. The
reference `xp predict` is measured against (bench/run.py predict).

Differences from the course, each needed to run here and to compare like with like:
- the model folder (the `save_pretrained` copy an xp run keeps), the rows, the output file and
  the batch size are arguments; the batch size is xp predict's default, 32;
- the rows are read and the predictions written with pandas, as `xp predict` does: the same
  files, the same libraries;
- `truncation=True`: xp truncates as in training (MRPC's pairs are all shorter than either limit).
"""

import argparse

import pandas as pd
from transformers import pipeline

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True, help="a save_pretrained folder")
parser.add_argument("--input", required=True, help="a Parquet file with sentence1 and sentence2")
parser.add_argument("--output", required=True, help="where the CSV of rows and predictions goes")
parser.add_argument("--batch-size", type=int, default=32)
args = parser.parse_args()

rows = pd.read_parquet(args.input)
classifier = pipeline("text-classification", model=args.model)
pairs = [{"text": row.sentence1, "text_pair": row.sentence2} for row in rows.itertuples()]
predictions = classifier(pairs, batch_size=args.batch_size, truncation=True)
rows["predicted_label"] = [prediction["label"] for prediction in predictions]
rows["score"] = [prediction["score"] for prediction in predictions]
rows.to_csv(args.output, index=False)
