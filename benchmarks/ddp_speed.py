"""One process against two gloo processes: training tokens per second of `train.py`.

    python benchmarks/ddp_speed.py [--steps 100] [--repeats 5] [--config configs/default.yaml]

Runs `train.py` on the embedded corpus (data/stories.jsonl) for `--steps` steps with the same
per-process batch size three ways: one process with `--threads` threads (the whole machine),
one process with one thread, and two processes under
`python -m torch.distributed.run --standalone --nproc_per_node=2` (gloo) with one thread each
(OMP_NUM_THREADS=1). The runs alternate (A, B, C, A, B, C, ...) and figures are medians; a
ratio is the median of the ratios of runs made one after the other. The machine's cores must be
free for the figures to mean anything: a warning says when they are not.

Throughput comes from each run's metrics.jsonl. The trainer counts the tokens of its own
rank's batches (`tokens_per_second` = rank 0's tokens / elapsed, written by rank 0 alone), so
under DDP the global figure needs the other rank's tokens too. They are computed exactly here:
the run directory's tokenizer and config rebuild every rank's batches with the trainer's own
sampler. The rate is taken between the first and the last train record (log_every apart), so
start-up and the first steps are left out. Run directories go to results/runs/ddp_speed-*.
Writes results/ddp_speed.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from lib.paths import CONFIGS, DEMO_CORPUS, ROOT
from lib.results import add_out_argument, machine, write_results
from lib.runs import fresh_run_dir, train_in_child
from lib.timing import median_ratio, thread_scaling

from textwae.config.loading import load_config
from textwae.data.splits import load_splits
from textwae.runs.metrics_log import read_metrics
from textwae.text.batching import BucketBatchSampler
from textwae.text.token_cache import sequence_lengths, tokenize
from textwae.text.tokenizers import Tokenizer

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def run(name: str, distributed: bool, threads: int, args: argparse.Namespace) -> Path:
    """Train into results/runs/ddp_speed-NAME; return the run directory."""
    out = fresh_run_dir(f"ddp_speed-{name}")
    overrides = ["--config", str(args.config), f"data.train={DEMO_CORPUS}",
                 f"train.max_steps={args.steps}", f"train.batch_size={args.batch_size}",
                 f"train.log_every={args.log_every}", f"train.num_threads={threads}",
                 f"train.eval_every={10 * args.steps}", "train.eval_batches=1",
                 f"train.checkpoint_every={10 * args.steps}", "train.max_time=null",
                 "train.grad_accumulation=1"]  # one batch a step: see rank_tokens
    started = time.perf_counter()
    train_in_child(out, overrides, TORCHRUN if distributed else (),
                   env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    print(f"{name}: {time.perf_counter() - started:.0f} s wall", flush=True)
    return out


def rank_tokens(run_dir: Path, world: int, steps: int) -> list[list[int]]:
    """Tokens of each rank's first `steps` steps (world x steps), rebuilt as the trainer
    batches them: its sampler over the run's tokenised training split; the trainer counts each
    unit's length, bos and eos included."""
    config = load_config(run_dir / "config.yaml")
    train_units, _ = load_splits(config.data)
    tokenizer = Tokenizer.load(run_dir / "tokenizer.model")
    lengths = sequence_lengths(tokenize([u.text for u in train_units], tokenizer,
                                        config.data.max_length))
    tokens = []
    for rank in range(world):
        sampler = BucketBatchSampler(lengths, config.train.batch_size, seed=config.train.seed,
                                     num_replicas=world, rank=rank)
        batches = (batch for epoch in range(steps) for batch in sampler.batches(epoch))
        tokens.append([sum(lengths[i] for i in next(batches)) for _ in range(steps)])
    return tokens


def throughput(run_dir: Path, world: int, steps: int) -> dict[str, Any]:
    """Global tokens per second between the first and the last train record."""
    train = read_metrics(run_dir)["train"]
    first, last = train[0], train[-1]
    tokens = rank_tokens(run_dir, world, steps)
    seconds = last["elapsed"] - first["elapsed"]
    window = sum(sum(rank[first["step"]:last["step"]]) for rank in tokens)
    return {"steps": [first["step"], last["step"]], "seconds": seconds,
            "tokens_per_second": window / seconds,
            # the trainer's own figure: rank 0's tokens over the whole run, start-up included
            "logged_tokens_per_second": last["tokens_per_second"],
            # a check of the rebuilt batches: rank 0's tokens as logged and as rebuilt
            "logged_rank0_tokens": round(last["tokens_per_second"] * last["elapsed"]),
            "rebuilt_rank0_tokens": sum(tokens[0][:last["step"]])}


VARIANTS = {  # name: (distributed, threads per process, processes)
    "single": (False, None, 1),  # threads: --threads
    "single_1thread": (False, 1, 1),
    "ddp_2x1thread": (True, 1, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIGS / "default.yaml")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64, help="per process")
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="threads of the single run")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each")
    add_out_argument(parser, "ddp_speed")
    args = parser.parse_args()
    if args.steps < 2 * args.log_every:
        parser.error("--steps must allow two train records: at least 2 x --log-every")
    load_before = os.getloadavg()
    scaling = thread_scaling(2)  # warns when another process holds a core
    rates: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for repeat in range(args.repeats):
        for name, (distributed, threads, processes) in VARIANTS.items():
            run_dir = run(f"{name}-{repeat}", distributed, threads or args.threads, args)
            rates[name].append(throughput(run_dir, processes, args.steps))
    median = {name: statistics.median(r["tokens_per_second"] for r in runs)
              for name, runs in rates.items()}
    rate = {name: [r["tokens_per_second"] for r in runs] for name, runs in rates.items()}
    ratios = {f"ddp_2x1thread/{name}": median_ratio(rate["ddp_2x1thread"], rate[name])
              for name in ("single", "single_1thread")}
    load_after = os.getloadavg()
    print(f"\n{'run':<16} {'processes':>9} {'threads':>7} {'tokens/s':>9}  per repeat")
    for name, (_, threads, processes) in VARIANTS.items():
        each = ", ".join(f"{r['tokens_per_second']:.0f}" for r in rates[name])
        print(f"{name:<16} {processes:>9} {threads or args.threads:>7} {median[name]:>9.0f}  "
              f"{each}")
    for pair, ratio in ratios.items():
        print(f"{pair:<30} {ratio:.2f}x")
    print(f"load average before {load_before}, after {load_after}")
    report = {
        "config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT)
                      else args.config),
        "steps": args.steps, "batch_size_per_process": args.batch_size,
        "log_every": args.log_every, "repeats": args.repeats, "single_threads": args.threads,
        **machine(), "load_average_before": load_before, "load_average_after": load_after,
        "matmul_gflops_by_threads": scaling, "tokens_per_second": median, "ratios": ratios,
        "runs": rates,
    }
    print(f"wrote {write_results(args.out, report).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
