"""Story-level units on ROCStories: reconstruction and samples per mode.

    python benchmarks/stories.py [--time 600]

Trains the default GRU WAE on whole stories (test.csv's four-sentence contexts plus val.csv's
stories with their right ending, 300 of those held out) and reports held-out reconstruction
BLEU, reconstruction perplexity, Self-BLEU of prior samples and five sampled stories per mode.
Writes results/stories.json.
"""

from __future__ import annotations

import argparse
import json

import torch
from lib.corpora import held_out, rocstories_jsonl
from lib.paths import CONFIGS, ROOT
from lib.results import add_out_argument, write_results
from lib.runs import train_and_evaluate

from textwae import generation
from textwae.models.autoencoder import TextWAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=600, help="train.max_time")
    parser.add_argument("--threads", type=int, default=2)
    add_out_argument(parser, "stories")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_path, valid_path = rocstories_jsonl()
    overrides = [f"data.train={train_path}", f"data.valid={valid_path}", "data.unit=story",
                 "data.max_length=96",
                 f"train.max_time={args.time}", "train.max_steps=1000000",
                 "train.eval_every=250", "train.checkpoint_every=1000000",
                 "tokenizer.vocab_size=4000"]
    row = train_and_evaluate("stories", [CONFIGS / "default.yaml"], overrides,
                             held_out(valid_path, 300), n_samples=200)
    model = TextWAE.from_pretrained(ROOT / row["run"])
    decoding = generation.DecodingConfig(temperature=0.8, max_length=96)
    row["samples"] = {mode: generation.sample(model, 5, decoding, mode, seed=mode)[0]
                      for mode in range(model.prior.components)}
    print(json.dumps({k: row[k] for k in ["bleu", "recon_perplexity", "self_bleu"]}))
    for mode, stories in row["samples"].items():
        print(f"== mode {mode} ==")
        print("\n".join(stories))
    print(json.dumps({"written": str(write_results(args.out, row))}))


if __name__ == "__main__":
    main()
