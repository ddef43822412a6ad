"""Writes the example's review slices: short product reviews, each tagged with the aspects it talks
about (price, quality, delivery, service; none, one or several), twice: as JSON Lines with a list
column `aspects`, and as CSV with one 0/1 column per aspect. Seeded: running it again writes the
same files. `python make_data.py` from this folder."""

import csv
import json
import random
from pathlib import Path

ASPECTS = ("price", "quality", "delivery", "service")
PHRASES = {
    "price": ["it was cheap", "far too expensive", "good value for the money", "the price was fair", "overpriced"],
    "quality": ["it broke after a week", "solid build", "the material feels flimsy", "well made", "sturdy and neat"],
    "delivery": ["it arrived late", "shipping was fast", "the parcel came damaged", "delivered a day early"],
    "service": ["support never answered", "the staff were helpful", "customer service was rude", "a kind reply"],
}
NEUTRAL = ["I bought this for my sister", "second order here", "used it twice so far", "bought it last month"]
SPLITS = {"train": 160, "validation": 40, "test": 40}


def review(rng: random.Random) -> tuple[str, list[str]]:
    aspects = sorted(rng.sample(ASPECTS, rng.choice([0, 1, 1, 2, 2, 3])), key=ASPECTS.index)
    parts = [rng.choice(PHRASES[aspect]) for aspect in aspects]
    parts.insert(rng.randrange(len(parts) + 1), rng.choice(NEUTRAL))
    return ", ".join(parts).capitalize() + ".", aspects


def main() -> None:
    rng = random.Random(7)
    folder = Path(__file__).parent
    for split, count in SPLITS.items():
        rows = [review(rng) for _ in range(count)]
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as file:
            for text, aspects in rows:
                file.write(json.dumps({"text": text, "aspects": aspects}) + "\n")
        with (folder / f"{split}.csv").open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["text", *ASPECTS])
            for text, aspects in rows:
                writer.writerow([text, *(int(aspect in aspects) for aspect in ASPECTS)])


if __name__ == "__main__":
    main()
