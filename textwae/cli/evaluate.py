"""`textwae evaluate` and `textwae plot`: score a run on held-out data; draw its plots."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from textwae.cli.common import (
    add_model_and_fields,
    data_config,
    held_out,
    judge_examples,
    load_model,
    warnings_to_stderr,
)
from textwae.evaluation.evaluate import evaluate
from textwae.evaluation.lm_judge import DEFAULT_LM
from textwae.evaluation.plots import write_plots
from textwae.evaluation.stories import evaluate_stories
from textwae.generation import StoryLevel
from textwae.models.story import StoryRun, has_story_level
from textwae.runs.checkpoint import atomic_write, check_output_path

STORY_SAMPLES = 200  # stories sampled per mode at most: each is several sentences


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_fields(parser)
    parser.add_argument("--data", default=None,
                        help="held-out data: a path, glob or `datasets` name (default: the "
                        "validation data of the run's config)")
    parser.add_argument("--n-samples", type=int, default=500,
                        help="prior samples for Self-BLEU and distinct-n, and per mode for "
                        "mode_accuracy and samples.per_mode; also the most transfers judged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--judge-cache", type=Path, default=None,
                        help="folder that keeps the n-gram judge of each training corpus "
                        "(default: .judges beside the run directory, e.g. runs/.judges)")
    parser.add_argument("--no-embedding-judge", action="store_true",
                        help="skip the MiniLM embedding judge, which runs by default when the "
                        "minilm extra is installed")
    parser.add_argument("--no-lm", action="store_true",
                        help="decode samples with the run's decoder alone, not reranked by its "
                        "generation.lm as generate decodes them (faster)")
    lm = parser.add_mutually_exclusive_group()
    lm.add_argument("--lm-judge", default=None, metavar="PATH|package:NAME",
                    help="the pretrained causal LM that judges fluency (a folder, a GGUF file "
                    f"or package:NAME; default: {DEFAULT_LM} when installed)")
    lm.add_argument("--no-lm-judge", action="store_true",
                    help="skip the LM judge (lm_fluent, lm_ppl_ratio)")
    parser.set_defaults(handler=run_evaluate)


def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_fields(parser)
    parser.add_argument("--data", default=None,
                        help="data to map (default: the validation data of the run's config)")
    parser.set_defaults(handler=run_plot)


def run_evaluate(args: argparse.Namespace) -> None:
    if args.out is not None:  # before the evaluation, which may take minutes
        check_output_path(args.out)
    with warnings_to_stderr():
        model = load_model(args)
        if args.no_lm:  # this process's copy of the settings; the run keeps its own
            model.config.generation.lm = None
        examples = held_out(args, data_config(model.config, args))
        judge_data = judge_examples(model.config, args)  # the judges' training split
        cache = args.judge_cache or Path(args.model).resolve().parent / ".judges"
        lm_judge = False if args.no_lm_judge else args.lm_judge
        result = evaluate(model, examples, judge_data, n_samples=args.n_samples, seed=args.seed,
                          judge_cache=cache,
                          embedding_judge=False if args.no_embedding_judge else None,
                          lm_judge=lm_judge)
        if has_story_level(args.model):  # and the story level, on whole held-out stories
            stories = held_out(args, dataclasses.replace(data_config(model.config, args),
                                                         unit="story"))
            train_stories = judge_examples(model.config, args, unit="story")
            if train_stories is not None:
                run = StoryRun.from_pretrained(args.model, args.device, sentences=model)
                result["stories"] = evaluate_stories(
                    StoryLevel(run), stories, train_stories,
                    n_samples=min(args.n_samples, STORY_SAMPLES), seed=args.seed,
                    judge_cache=cache, max_length=model.config.data.max_length,
                    lm_judge=lm_judge)
    text = json.dumps(result, indent=2, allow_nan=False)
    if args.out is not None:
        atomic_write(args.out, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    print(text)


def run_plot(args: argparse.Namespace) -> None:
    with warnings_to_stderr():
        model = load_model(args)
        examples = held_out(args, data_config(model.config, args))
        for path in write_plots(model, args.model, examples):
            print(path)
