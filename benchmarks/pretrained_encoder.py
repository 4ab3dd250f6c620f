"""MiniLM frozen vs MiniLM fine-tuned vs the default GRU encoder on Yelp (issue 12).

    python benchmarks/pretrained_encoder.py --speed-only [--threads 1] [--steps 12]
    python benchmarks/pretrained_encoder.py [--time 600] [--threads 2]
    python benchmarks/pretrained_encoder.py --memory-only [--steps 50]

All three share the default GRU decoder; train on sentiment.test.*, validate on sentiment.dev.*.

--speed-only: training units per second of each encoder, one optimiser step at a time
(`Trainer.train_step` on the same length-bucketed batches of 128 units of at most 32 tokens),
measured in `--rounds` interleaved rounds (the median is reported, so a busy machine's load
falls on all three alike), on `--units` training units drawn at random; and the frozen encoder's
one-off cost, the units per second at which its features are computed. Nothing is evaluated.

Full (equal wall time, `train.max_time` each): for each encoder, runs with 10% and with 1% of
the labels (2 modes: complaint, praise) scored by `evaluate` on 1,000 dev sentences (samples
in their own mode by the TF-IDF judge, reconstruction BLEU), one run without labels (NMI of
modes and sentiment), and the transfer of 500 dev complaints to the praise mode of the 1% run
(judge's praise rate, BLEU to the inputs). Training validates on 4,000 other dev sentences.
The frozen runs share one feature cache, so its features are computed once, by the first
frozen run, before its training clock starts (its `wall_seconds` include them).
--memory-only: the peak resident memory of `train.py` (a child process) training `--steps`
steps with each encoder.
Writes results/pretrained_encoder.json, or pretrained_encoder_speed.json /
pretrained_encoder_memory.json (or --out).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

import torch
from lib.corpora import held_out, write_jsonl, yelp_jsonl
from lib.paths import CONFIGS, RESULTS, ROOT
from lib.results import add_out_argument, machine, write_results
from lib.runs import fresh_run_dir, train_and_evaluate, train_in_child
from modes import transfer_figures

from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.models.autoencoder import TextWAE
from textwae.training.pipeline import build_data, prepare_run
from textwae.training.trainer import Trainer

MINILM = [CONFIGS / "default.yaml", CONFIGS / "minilm_encoder.yaml"]
ENCODERS = {  # name: (configs, overrides)
    "gru": ([CONFIGS / "default.yaml"], []),
    "minilm_frozen": (MINILM, []),
    "minilm_fine_tuned": (MINILM, ["model.freeze_encoder=false"]),
}


def base_overrides(train_path, valid_path, threads: int) -> list[str]:
    return [f"data.train={train_path}", f"data.valid={valid_path}", "data.max_length=32",
            "prior.components=2", "train.batch_size=128", "tokenizer.vocab_size=8000",
            f"train.num_threads={threads}"]


def speed(args) -> dict:
    """Units per second of a training step, and of the frozen encoder's feature pass."""
    train_path = RESULTS / "data" / f"yelp.test.sample{args.units}.jsonl"
    write_jsonl(train_path, [{"text": e.text, "label": e.label}
                             for e in held_out(yelp_jsonl("test"), args.units)])
    base = [*base_overrides(train_path, yelp_jsonl("dev"), args.threads),
            "data.label_field=label", "data.labeled_fraction=0.1"]
    trainers, features = {}, {}
    for name, (configs, overrides) in ENCODERS.items():
        run = fresh_run_dir(f"pretrained-speed-{name}")
        config = load_config(*configs, overrides=[*base, *overrides])
        train_units, valid_units = prepare_run(config, run, resume=False)
        model = TextWAE.build(config, run, parts_from_run=False)
        started = time.perf_counter()
        data = build_data(model, train_units, valid_units[:64])  # no cache: computed here
        seconds = time.perf_counter() - started
        if name == "minilm_frozen":  # tokenising takes a fraction of a second
            features = {"units": len(train_units) + 64, "seconds": round(seconds, 2),
                        "units_per_second": round((len(train_units) + 64) / seconds, 1)}
        trainer = Trainer(model, data.train, data.valid, run)
        epochs = itertools.count()  # as many epochs as the rounds take
        trainers[name] = (trainer, itertools.chain.from_iterable(
            trainer.train_batches.batches(epoch) for epoch in epochs))
        trainer.train_step(next(trainers[name][1]))  # warm-up: allocations, first calls
        print(json.dumps({"built": name}), file=sys.stderr)
    rates: dict[str, list[float]] = {name: [] for name in ENCODERS}
    for _ in range(args.rounds):
        for name, (trainer, batches) in trainers.items():
            units, started = 0, time.perf_counter()
            for _ in range(args.steps):
                batch = next(batches)
                trainer.train_step(batch)
                units += len(batch.index)
            rates[name].append(units / (time.perf_counter() - started))
    medians = {name: round(statistics.median(r), 1) for name, r in rates.items()}
    return {"batch_size": 128, "max_length": 32,
            "steps_per_round": args.steps, "rounds": args.rounds,
            "train_units_per_second": medians,
            "per_round": {name: [round(r, 1) for r in rs] for name, rs in rates.items()},
            "frozen_over_fine_tuned": round(medians["minilm_frozen"]
                                            / medians["minilm_fine_tuned"], 2),
            "frozen_over_gru": round(medians["minilm_frozen"] / medians["gru"], 2),
            "frozen_feature_pass": features}


def scored_dev() -> list[Example]:
    """The 1,000 dev sentences every run of the full comparison is scored on."""
    return held_out(yelp_jsonl("dev"), 1000)


def full_run_overrides(args, evaluation: list[Example]) -> list[str]:
    """What every run of the full comparison (and of --memory-only) shares: all of
    sentiment.test.* to train on, validated on 4,000 dev sentences outside `evaluation`,
    features and token ids cached in one place."""
    valid_path = yelp_jsonl("dev")
    scored = {e.text for e in evaluation}
    monitor = RESULTS / "data" / "yelp.dev.monitor4000.jsonl"
    write_jsonl(monitor, [{"text": e.text, "label": e.label}
                          for e in held_out(valid_path, 5000, seed=2) if e.text not in scored
                          ][:4000])
    return [*base_overrides(yelp_jsonl("test"), monitor, args.threads),
            f"train.max_time={args.time}", "train.max_steps=1000000", "train.eval_every=500",
            "train.eval_batches=20", "train.checkpoint_every=1000000",
            f"data.cache_dir={RESULTS / 'data' / 'cache'}"]


def memory(args) -> dict:
    """Peak resident memory of training with each encoder: `train.py` in a child process
    for `--steps` steps at 1% labels (the frozen encoder's features from the shared cache,
    computed first if the full comparison has not)."""
    base = full_run_overrides(args, scored_dev())
    peaks = {}
    for name, (configs, overrides) in ENCODERS.items():
        usage = train_in_child(fresh_run_dir(f"pretrained-memory-{name}"), [
            *(["--config", str(configs[-1])] if len(configs) > 1 else []), *base, *overrides,
            "data.label_field=label", "data.labeled_fraction=0.01",
            f"train.max_steps={args.steps}", f"train.eval_every={args.steps}"])
        peaks[name] = round(usage.ru_maxrss / 1024)  # KiB on Linux
        print(json.dumps({"encoder": name, "peak_rss_mib": peaks[name]}), file=sys.stderr)
    return {"steps": args.steps, "peak_rss_mib": peaks}


def full(args) -> dict:
    """Every encoder at each label setting, the fewest labels first; the results so far are
    written after every run, so a stopped benchmark keeps what it measured."""
    train_path, valid_path = yelp_jsonl("test"), yelp_jsonl("dev")
    train_examples = held_out(train_path, 10**9)
    evaluation = scored_dev()
    base = full_run_overrides(args, evaluation)
    settings = {f"labelled_{fraction}": ["data.label_field=label",
                                         f"data.labeled_fraction={fraction}"]
                for fraction in sorted(args.labeled_fractions)}
    if not args.skip_unlabelled:
        settings["unlabelled"] = []
    result: dict = {name: {} for name in ENCODERS}
    for setting, labels in settings.items():
        for name, (configs, overrides) in ENCODERS.items():
            figures = train_and_evaluate(f"pretrained-{name}-{setting}", configs,
                                         [*base, *overrides, *labels], evaluation,
                                         train_examples)
            result[name][setting] = figures
            if setting == f"labelled_{min(args.labeled_fractions)}":
                result[name]["transfer"] = transfer_figures(ROOT / figures["run"],
                                                            train_examples, valid_path)
            write_results(args.out, {"machine": machine(), "threads": args.threads,
                                     "max_time": args.time, "partial": True, **result})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--memory-only", action="store_true",
                        help="peak memory of --steps training steps with each encoder")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: 1 with --speed-only, else 2)")
    parser.add_argument("--units", type=int, default=4096, help="--speed-only: training units")
    parser.add_argument("--steps", type=int, default=None,
                        help="--speed-only: steps per round (12); --memory-only: steps (50)")
    parser.add_argument("--rounds", type=int, default=3, help="--speed-only: interleaved rounds")
    parser.add_argument("--time", type=float, default=600, help="train.max_time per run")
    parser.add_argument("--labeled-fractions", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--skip-unlabelled", action="store_true",
                        help="no run without labels (NMI of modes and sentiment)")
    add_out_argument(parser, "pretrained_encoder[_speed|_memory]")
    args = parser.parse_args()
    mode = "speed" if args.speed_only else "memory" if args.memory_only else None
    if args.out == "pretrained_encoder[_speed|_memory]":
        args.out = "pretrained_encoder" + (f"_{mode}" if mode else "")
    args.threads = args.threads or (1 if args.speed_only else 2)
    args.steps = args.steps or (12 if args.speed_only else 50)
    torch.set_num_threads(args.threads)
    result = {"machine": machine(), "threads": args.threads,
              **({"speed": speed, "memory": memory}[mode](args) if mode
                 else {"max_time": args.time, **full(args)})}
    print(json.dumps(result, indent=2))
    print(json.dumps({"written": str(write_results(args.out, result))}))

if __name__ == "__main__":
    main()
