"""The story level alone: its settings side by side on one trained sentence model.

    python benchmarks/story_level.py --run results/runs/stories_roc_paths --corpus roc \
        [--time 120] [--cases default regression ...]

Copies the sentence stage of a story run (`benchmarks/stories.py` trains one) once per case,
sets the case's `story.*` values in the copy's config.yaml, trains the story level for
`--time` seconds through `textwae.training.pipeline.train_story_level` and scores it with
`evaluate_stories`, so the cases differ only in the story level. Writes
results/story_level_CORPUS.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from lib.results import add_out_argument, machine, write_results
from lib.runs import final_record, fresh_run_dir
from stories import corpus, scored

from textwae.config.loading import load_config
from textwae.generation import StoryLevel
from textwae.models.story import STORY_DIR, StoryRun
from textwae.runs import checkpoint
from textwae.training.pipeline import train_story_level

CASES = {
    "default": [],  # a mixture of 4 Gaussians per next code, story code of 16
    "regression": ["story.code_mixtures=1"],  # one Gaussian: a regression with learned spread
    "latent_64": ["story.latent_dim=64"],
    "hidden_128": ["story.hidden_size=128"],
    "no_input_noise": ["story.code_noise=0", "story.z_noise=0"],
}
SENTENCE_FILES = (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE, checkpoint.TOKENIZER_FILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a story run (its sentence stage is used)")
    parser.add_argument("--corpus", choices=["roc", "demo"], default="roc")
    parser.add_argument("--time", type=float, default=60, help="story-stage seconds per case")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    add_out_argument(parser, "")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, valid, train_stories = corpus(args.corpus)
    source = Path(args.run)
    rows = {}
    for case in args.cases:
        run = fresh_run_dir(f"story_level_{args.corpus}_{case}")
        run.mkdir(parents=True)
        for name in SENTENCE_FILES:
            shutil.copy2(source / name, run / name)
        config = load_config(run / checkpoint.CONFIG_FILE, overrides=[
            *CASES[case], f"story.max_time={args.time}", "story.max_steps=1000000"])
        config.save(run / checkpoint.CONFIG_FILE)
        train_story_level(run, resume=False)
        story_run = StoryRun.from_pretrained(run)
        rows[case] = {"overrides": CASES[case], "story_level": final_record(run / STORY_DIR),
                      **scored(args.corpus, case, StoryLevel(story_run),
                               story_run.sentences.config.data.max_length, valid,
                               train_stories, args.n_samples)}
    payload = {"corpus": args.corpus, "sentence_run": str(args.run), "time": args.time,
               "threads": args.threads, **machine(), "cases": rows}
    print(json.dumps({"written": str(write_results(args.out or f"story_level_{args.corpus}",
                                                   payload))}))


if __name__ == "__main__":
    main()
