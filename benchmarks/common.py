"""What the quality benchmarks share: the shared corpora, one training run, evaluation, JSON.

Benchmarks train through `textwae.training.train` (the one training loop) and score through
`textwae.evaluation.evaluate`; nothing here trains or scores on its own.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from textwae.config import load_config
from textwae.data import Example
from textwae.evaluation import evaluate
from textwae.model import TextWAE
from textwae.training import train

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def yelp_jsonl(split: str) -> Path:
    """sentiment.{split}.{0,1} as one JSONL with labels (complaint, praise), made once."""
    out = RESULTS / "data" / f"yelp.{split}.jsonl"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for number, label in [(0, "complaint"), (1, "praise")]:
            path = SHARED / "yelp" / f"sentiment.{split}.{number}"
            for text in path.read_text(encoding="utf-8").splitlines():
                if text.strip():
                    lines.append(json.dumps({"text": text.strip(), "label": label}))
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def rocstories_jsonl() -> tuple[Path, Path]:
    """Train on test.csv's four-sentence contexts plus val.csv's stories with the right ending
    (all but 300), hold out those 300 val.csv stories."""
    out = RESULTS / "data"
    train_path, valid_path = out / "roc.train.jsonl", out / "roc.valid.jsonl"
    if not train_path.exists():
        out.mkdir(parents=True, exist_ok=True)
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
        write = lambda path, texts: path.write_text(  # noqa: E731
            "".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
        write(valid_path, stories[:300])
        write(train_path, stories[300:] + contexts)
    return train_path, valid_path


def held_out(path: Path, n: int, seed: int = 0) -> list[Example]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    chosen = random.Random(seed).sample(records, min(n, len(records)))
    return [Example(text=r["text"], label=r.get("label")) for r in chosen]


def train_and_evaluate(name: str, configs: list[Path | dict], overrides: list[str],
                       evaluation: list[Example], train_examples: list[Example] | None = None,
                       n_samples: int = 500) -> dict[str, Any]:
    """Train one configuration into results/runs/NAME and return its figures."""
    run = RESULTS / "runs" / name
    shutil.rmtree(run, ignore_errors=True)
    config = load_config(*configs, overrides=overrides)
    started = time.perf_counter()
    train(config, run)
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last_valid = [r for r in records if r["split"] == "valid"][-1]
    model = TextWAE.from_pretrained(run)
    scores = evaluate(model, evaluation, train_examples, n_samples=n_samples)
    result = {"name": name, "run": str(run.relative_to(ROOT)), "wall_seconds": round(wall, 1),
              "steps": last_valid["step"], "valid": last_valid,
              "train_tokens_per_second": records[-1]["tokens_per_second"], **scores}
    print(json.dumps({k: result[k] for k in ["name", "bleu", "steps"]}), file=sys.stderr)
    return result


def write_results(name: str, payload: dict[str, Any]) -> Path:
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
