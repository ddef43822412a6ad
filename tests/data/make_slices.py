"""Rebuild the small data slices of tests/data from the full data sets.

    python tests/data/make_slices.py DATA
    XP_DATA=DATA python tests/data/make_slices.py

DATA is the folder holding the full sets, laid out as `glue/mrpc/` (hub layout: one parquet file
per split), `conll2003/` (CoNLL column files), `squad/small.json` (SQuAD v2.0) and `scitldr/`
(JSON Lines). Every slice is a seeded random sample (random.Random(SEED).sample), kept in the
source's order and written in the source's format, so the same DATA gives the same bytes:

- mrpc: rows of each parquet split, sampled within each label so the slice keeps the source's label
  balance, with the same schema (features, ClassLabel names, idx);
- conll2003: whole sentences, each copied byte for byte (tab-separated, CRLF, blank line after);
- squad: whole paragraphs (context and all their questions) of each article, as SQuAD v2.0 JSON
  written like the source (2-space indent, UTF-8, final newline);
- scitldr: whole lines, byte for byte (newline-separated, no final newline, as the source).

The sizes are SIZES below; each folder's README.md says where the data comes from, its license,
and these numbers. The script prints what it wrote, so a README can be checked against it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

SEED = 0
HERE = Path(__file__).resolve().parent
# rows (mrpc), sentences (conll2003), paragraphs per article (squad), lines (scitldr), per split.
SIZES: dict[str, dict[str, int]] = {
    "mrpc": {"train": 300, "validation": 100, "test": 100},
    "conll2003": {"train": 300, "valid": 150, "test": 150},
    "squad": {"paragraphs_per_article": 6},
    "scitldr": {"train": 100, "dev": 30, "test": 30},
}


def sample(count: int, wanted: int, seed: int) -> list[int]:
    """`wanted` distinct positions out of `count`, drawn with `seed`, in ascending order."""
    return sorted(random.Random(seed).sample(range(count), min(wanted, count)))


def stratified_sample(labels: list, wanted: int, seed: int) -> list[int]:
    """`wanted` positions drawn with `seed` within each label, in the labels' proportions (largest
    remainders round), in ascending order: the slice keeps the source's label balance."""
    by_label: dict = {}
    for position, label in enumerate(labels):
        by_label.setdefault(label, []).append(position)
    shares = {label: wanted * len(positions) / len(labels) for label, positions in by_label.items()}
    counts = {label: int(share) for label, share in shares.items()}
    by_remainder = sorted(shares, key=lambda label: (counts[label] - shares[label], label))
    for label in by_remainder[: wanted - sum(counts.values())]:
        counts[label] += 1
    rng = random.Random(seed)
    return sorted(p for label in sorted(by_label) for p in rng.sample(by_label[label], counts[label]))


def slice_mrpc(source: Path, target: Path) -> list[str]:
    import pyarrow.parquet as pq

    lines = []
    for split, wanted in SIZES["mrpc"].items():
        table = pq.read_table(source / f"{split}.parquet")
        positions = stratified_sample(table.column("label").to_pylist(), min(wanted, table.num_rows), SEED)
        kept = table.take(positions)  # keeps the schema and its metadata (features, label names)
        pq.write_table(kept, target / f"{split}.parquet", compression="snappy")
        labels = kept.column("label").to_pylist()
        counts = ", ".join(f"{label}: {labels.count(label)}" for label in sorted(set(labels)))
        lines.append(f"mrpc/{split}.parquet: {kept.num_rows} of {table.num_rows} rows (label {counts})")
    return lines


def slice_conll2003(source: Path, target: Path) -> list[str]:
    lines = []
    for split, wanted in SIZES["conll2003"].items():
        data = (source / f"{split}.txt").read_bytes()
        separator = b"\r\n\r\n" if b"\r\n" in data else b"\n\n"  # every sentence ends with a blank line
        sentences = [block for block in data.split(separator) if block.strip()]
        if data != b"".join(block + separator for block in sentences):
            raise SystemExit(f"{source / split}.txt: not sentences each followed by one blank line")
        kept = [sentences[i] for i in sample(len(sentences), wanted, SEED)]
        (target / f"{split}.txt").write_bytes(b"".join(block + separator for block in kept))
        tokens = sum(block.count(b"\n") + 1 for block in kept)
        lines.append(f"conll2003/{split}.txt: {len(kept)} of {len(sentences)} sentences, {tokens} tokens")
    return lines


def slice_squad(source: Path, target: Path) -> list[str]:
    text = (source / "small.json").read_text(encoding="utf-8")
    document = json.loads(text)
    if json.dumps(document, indent=2, ensure_ascii=False) + "\n" != text:
        raise SystemExit(f"{source / 'small.json'}: not written as json.dumps(indent=2, ensure_ascii=False)")
    wanted = SIZES["squad"]["paragraphs_per_article"]
    for number, article in enumerate(document["data"]):
        paragraphs = article["paragraphs"]
        article["paragraphs"] = [paragraphs[i] for i in sample(len(paragraphs), wanted, SEED + number)]
    questions = [qa for article in document["data"] for p in article["paragraphs"] for qa in p["qas"]]
    impossible = sum(bool(qa.get("is_impossible")) for qa in questions)
    (target / "small.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paragraphs = sum(len(article["paragraphs"]) for article in document["data"])
    return [
        f"squad/small.json: {len(document['data'])} articles, {paragraphs} paragraphs, {len(questions)} questions "
        f"({len(questions) - impossible} answerable, {impossible} impossible)"
    ]


def slice_scitldr(source: Path, target: Path) -> list[str]:
    lines = []
    for split, wanted in SIZES["scitldr"].items():
        data = (source / f"{split}.jsonl").read_bytes()
        papers = data.split(b"\n")
        final_newline = papers[-1] == b""
        if final_newline:
            papers.pop()
        kept = [papers[i] for i in sample(len(papers), wanted, SEED)]
        (target / f"{split}.jsonl").write_bytes(b"\n".join(kept) + (b"\n" if final_newline else b""))
        lines.append(f"scitldr/{split}.jsonl: {len(kept)} of {len(papers)} papers")
    return lines


SLICES = {
    "mrpc": ("glue/mrpc", slice_mrpc),
    "conll2003": ("conll2003", slice_conll2003),
    "squad": ("squad", slice_squad),
    "scitldr": ("scitldr", slice_scitldr),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", default=os.environ.get("XP_DATA"), help="the full sets (or $XP_DATA)")
    parser.add_argument("--out", default=str(HERE), help="where the slices go (default: this folder)")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error(
            "name the folder of the full data sets (holding glue/mrpc, conll2003, squad, scitldr) or set XP_DATA"
        )
    data, out = Path(args.data).expanduser(), Path(args.out)
    missing = [str(data / folder) for folder, _ in SLICES.values() if not (data / folder).is_dir()]
    if missing:
        print(f"make_slices: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    for name, (folder, make) in SLICES.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        for line in make(data / folder, out / name):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
