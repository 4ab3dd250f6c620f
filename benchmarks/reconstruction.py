"""Held-out reconstruction on Yelp: GRU WAE, Transformer WAE and the VAE baseline, each trained
for the same `train.max_time`, side by side.

    python benchmarks/reconstruction.py [--time 300] [--configs default transformer_mmd vae_kl]

Trains on sentiment.test.* (126,670 sentences), validates on sentiment.dev.*, and prints for
each config: held-out greedy reconstruction BLEU (sacrebleu) on 1,000 dev sentences, the last
validation loss and training tokens per second. Writes results/reconstruction.json.
"""

from __future__ import annotations

import argparse
import json

import torch
from lib.corpora import held_out, yelp_jsonl
from lib.paths import CONFIGS
from lib.results import add_out_argument, write_results
from lib.runs import train_and_evaluate

# vae_kl.yaml's KL weight is 1 / (target tokens per unit), the exact negative ELBO per token:
# Yelp sentences have about 15 tokens
PER_CONFIG = {"vae_kl": ["regularizer.weight=0.067"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=300, help="train.max_time per config")
    parser.add_argument("--configs", nargs="+", default=["default", "transformer_mmd", "vae_kl"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--held-out", type=int, default=1000)
    add_out_argument(parser, "reconstruction")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_path, valid_path = yelp_jsonl("test"), yelp_jsonl("dev")
    evaluation = held_out(valid_path, args.held_out)
    overrides = [f"data.train={train_path}", f"data.valid={valid_path}", "data.max_length=32",
                 f"train.max_time={args.time}", "train.max_steps=1000000",
                 "train.eval_every=500", "train.eval_batches=20", "train.checkpoint_every=1000000",
                 "train.batch_size=128", "tokenizer.vocab_size=8000"]
    rows = []
    for name in args.configs:
        configs = [CONFIGS / f"{name}.yaml"]
        rows.append(train_and_evaluate(f"reconstruction-{name}", configs,
                                       overrides + PER_CONFIG.get(name, []), evaluation,
                                       n_samples=200))
    print(f"{'config':<18}{'BLEU':>8}{'valid loss':>12}{'valid recon':>13}{'tokens/s':>11}")
    for row in rows:
        print(f"{row['name'].split('-', 1)[1]:<18}{row['bleu']:>8.2f}{row['valid']['loss']:>12.3f}"
              f"{row['valid']['recon']:>13.3f}{row['train_tokens_per_second']:>11.0f}")
    print(f"signature: {rows[0]['bleu_signature']}")
    path = write_results(args.out, {"max_time": args.time, "rows": rows})
    print(json.dumps({"written": str(path)}))


if __name__ == "__main__":
    main()
