"""New tokens per second of the decoders, with and without the key/value cache.

Greedy decoding of a fixed number of new tokens (eos ignored, so every run does the same
work) from random codes, with untrained weights: speed does not depend on training. The
Transformer decoder has the sizes of configs/transformer_mmd.yaml and runs twice: with the
cache (`start` / `step`: each step runs the new token only) and without it (each step runs
the full forward on the whole sequence so far, z prefix included). The GRU decoder has the
default config. Prints a table and writes results/generation_speed.json (`--out`).

    python benchmarks/generation_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from lib.paths import CONFIGS, ROOT
from lib.results import add_out_argument, machine, write_results

from textwae.config.loading import load_config
from textwae.models.decoders import DECODERS
from textwae.text.tokenizers import BOS_ID


def cached(decoder: torch.nn.Module, z: torch.Tensor, new_tokens: int) -> torch.Tensor:
    state = decoder.start(z)
    tokens = torch.full((z.shape[0],), BOS_ID, dtype=torch.long, device=z.device)
    for _ in range(new_tokens):
        logits, state = decoder.step(tokens, state)  # (B, V)
        tokens = logits.argmax(dim=-1)
    return tokens


def recompute(decoder: torch.nn.Module, z: torch.Tensor, new_tokens: int) -> torch.Tensor:
    ids = torch.full((z.shape[0], 1), BOS_ID, dtype=torch.long, device=z.device)
    for _ in range(new_tokens):
        logits = decoder(ids, z)[:, -1]  # (B, V) from the full forward of (B, t)
        ids = torch.cat([ids, logits.argmax(dim=-1)[:, None]], dim=1)
    return ids[:, -1]


def timed(run: Callable[[int], torch.Tensor], new_tokens: int, repeats: int,
          device: str) -> list[float]:
    """Seconds of each of `repeats` runs of `run(new_tokens)`, after a short warm-up run."""
    run(4)  # warm-up: allocator, kernels, lazy imports
    seconds = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        run(new_tokens)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--device", default="cpu")
    add_out_argument(parser, "generation_speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    configs = {"transformer": load_config(CONFIGS / "transformer_mmd.yaml"),
               "gru": load_config()}  # the defaults
    decoders = {name: DECODERS[name](config.model, config.tokenizer.vocab_size)
                for name, config in configs.items()}  # vocabulary: the size a run would have
    cases = [("transformer", "cache", cached), ("transformer", "recompute", recompute),
             ("gru", "state", cached)]
    results = []
    print(f"{'decoder':<12} {'mode':<10} {'batch':>5} {'tokens/s':>10} {'seconds':>8}")
    with torch.inference_mode():
        for batch in args.batches:
            for name, mode, generate in cases:
                decoder = decoders[name].to(args.device).eval()
                z = torch.randn(batch, configs[name].model.latent_dim, device=args.device)
                seconds = timed(lambda n, d=decoder, z=z, g=generate: g(d, z, n),
                                args.new_tokens, args.repeats, args.device)
                best = min(seconds)
                rate = batch * args.new_tokens / best
                results.append({"decoder": name, "mode": mode, "batch": batch,
                                "tokens_per_s": rate, "seconds_best": best,
                                "seconds_median": statistics.median(seconds)})
                print(f"{name:<12} {mode:<10} {batch:>5} {rate:>10.0f} {best:>8.3f}")
    rate = {(r["decoder"], r["mode"], r["batch"]): r["tokens_per_s"] for r in results}
    speedups = {str(batch): rate["transformer", "cache", batch]
                / rate["transformer", "recompute", batch] for batch in args.batches}
    for batch, speedup in speedups.items():
        print(f"transformer cache / recompute at batch {batch}: {speedup:.1f}x")
    report = {
        "new_tokens": args.new_tokens, "threads": args.threads, "device": args.device,
        **machine(),
        "transformer_config": "configs/transformer_mmd.yaml", "gru_config": "default",
        "results": results, "cache_speedup": speedups,
    }
    print(f"wrote {write_results(args.out, report).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
