"""The shared corpora (../shared/data) as JSONL files training reads, made once under
results/data/, and held-out examples drawn from such a file."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from textwae.data.records import Example

from .paths import RESULTS, SHARED

DATA = RESULTS / "data"


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def yelp_jsonl(split: str) -> Path:
    """sentiment.{split}.{0,1} as one JSONL with labels (complaint, praise), made once."""
    out = DATA / f"yelp.{split}.jsonl"
    if not out.exists():
        records = []
        for number, label in [(0, "complaint"), (1, "praise")]:
            path = SHARED / "yelp" / f"sentiment.{split}.{number}"
            for text in path.read_text(encoding="utf-8").splitlines():
                if text.strip():
                    records.append({"text": text.strip(), "label": label})
        write_jsonl(out, records)
    return out


def rocstories_jsonl() -> tuple[Path, Path]:
    """Train on test.csv's four-sentence contexts plus val.csv's stories with the right ending
    (all but 300), hold out those 300 val.csv stories."""
    train_path, valid_path = DATA / "roc.train.jsonl", DATA / "roc.valid.jsonl"
    if not train_path.exists():
        stories: list[str] = []
        with open(SHARED / "rocstories" / "val.csv", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                ending = row[f"RandomFifthSentenceQuiz{row['AnswerRightEnding']}"]
                stories.append(" ".join([row[f"InputSentence{i}"] for i in range(1, 5)]
                                        + [ending]))
        with open(SHARED / "rocstories" / "test.csv", encoding="utf-8") as handle:
            contexts = [" ".join(row[f"InputSentence{i}"] for i in range(1, 5))
                        for row in csv.DictReader(handle)]
        random.Random(0).shuffle(stories)
        write_jsonl(valid_path, [{"text": t} for t in stories[:300]])
        write_jsonl(train_path, [{"text": t} for t in stories[300:] + contexts])
    return train_path, valid_path


def held_out(path: Path, n: int, seed: int = 0) -> list[Example]:
    """`n` records of a JSONL file (all, if it has fewer), drawn at random."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    chosen = random.Random(seed).sample(records, min(n, len(records)))
    return [Example(text=r["text"], label=r.get("label")) for r in chosen]
