"""Streaming against in-memory training on a corpus of many shards: peak memory, set-up time
and training speed, side by side from one script run.

    python benchmarks/streaming.py [--copies 8] [--steps 150] [--threads 1]

The corpus is `--copies` shards, each all of Yelp's sentiment.test.* (126,670 sentences),
validated on sentiment.dev.*. Each mode trains the default config for `--steps` steps in its
own process, so its peak resident memory (ru_maxrss) is its own. Writes results/streaming.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lib.corpora import DATA, yelp_jsonl
from lib.results import add_out_argument, write_results
from lib.runs import final_record, fresh_run_dir, train_in_child

MODES = {"in_memory": ["data.streaming=false"], "streamed": ["data.streaming=true"]}


def shards(copies: int) -> Path:
    """`copies` JSONL shards of Yelp's test sentences, made once; returns their glob."""
    folder = DATA / "yelp_shards"
    text = yelp_jsonl("test").read_text(encoding="utf-8")
    for number in range(copies):
        path = folder / f"shard{number:03d}.jsonl"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for extra in sorted(folder.glob("shard*.jsonl"))[copies:]:
        extra.unlink()
    return folder / "shard*.jsonl"


def run_mode(name: str, overrides: list[str], threads: int) -> dict:
    """Train in a child process; its wall time, peak memory and the run's tokens per second."""
    run = fresh_run_dir(f"streaming-{name}")
    started = time.perf_counter()
    usage = train_in_child(run, [*overrides, f"train.num_threads={threads}"])
    wall = time.perf_counter() - started
    last = final_record(run)
    return {"mode": name, "wall_seconds": round(wall, 1),
            "training_seconds": last["elapsed"],
            "set_up_and_after_seconds": round(wall - last["elapsed"], 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is in KiB
            "train_tokens_per_second": last["tokens_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    add_out_argument(parser, "streaming")
    args = parser.parse_args()
    corpus, valid = shards(args.copies), yelp_jsonl("dev")
    common = [f"data.train={corpus}", f"data.valid={valid}", "data.max_length=32",
              f"train.max_steps={args.steps}", f"train.eval_every={args.steps}",
              "train.eval_batches=10", f"train.checkpoint_every={args.steps}",
              "train.max_time=null", "tokenizer.vocab_size=8000"]
    rows = [run_mode(name, common + MODES[name], args.threads)
            for name in ("streamed", "in_memory")]
    print(f"{'mode':<11}{'peak MiB':>10}{'set-up+after s':>16}{'train s':>9}{'tokens/s':>10}")
    for row in rows:
        print(f"{row['mode']:<11}{row['peak_rss_mib']:>10.0f}"
              f"{row['set_up_and_after_seconds']:>16.1f}{row['training_seconds']:>9.1f}"
              f"{row['train_tokens_per_second']:>10.0f}")
    streamed, in_memory = rows
    ratio = streamed["train_tokens_per_second"] / in_memory["train_tokens_per_second"]
    print(f"streamed / in-memory training speed: {ratio:.2f}x")
    path = write_results(args.out, {"copies": args.copies, "units": args.copies * 126670,
                                    "steps": args.steps, "threads": args.threads,
                                    "speed_ratio": round(ratio, 3), "rows": rows})
    print(json.dumps({"written": str(path)}))


if __name__ == "__main__":
    main()
