"""Stories as paths through the sentence space (configs/stories.yaml) vs whole stories as flat
units, at one training budget each, side by side.

    python benchmarks/stories.py [--corpus roc|demo] [--time 600] [--story-time 60]

roc: ROCStories (test.csv's four-sentence contexts plus val.csv's stories with their right
ending, 300 of those held out); demo: the embedded corpus with its registers as story modes
(its own 5% hold-out). The story run spends `--time` in all: the sentence stage
`--time - --story-time`, the story stage `--story-time`; the flat run spends `--time` on
`data.unit=story`. Both are scored by `textwae.evaluation.stories.evaluate_stories` (story
reconstruction BLEU, sampled sentences' clean rate and judge perplexity ratio, the coherence
judge's rate on sampled vs real stories, Self-BLEU, distinct-n, per-mode accuracy) and show
three stories per mode; the story run is scored three times: as it samples (each sentence said
once and no pronoun its characters contradict, stories read as another mode drawn again), with
its sentences as decoded (paths_as_decoded), and with the other choice of redraws
(paths_redraws_N). Writes results/OUT.json (default stories_CORPUS), its
runs under results/runs/OUT_KIND. `--score RUN` scores a story run trained elsewhere (`make demo`'s:
--corpus demo) the same three ways and trains nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from lib.corpora import held_out, rocstories_jsonl
from lib.paths import CONFIGS, DEMO_CORPUS, RESULTS, ROOT
from lib.results import add_out_argument, machine, write_results
from lib.runs import final_record, fresh_run_dir

from textwae.config.loading import load_config
from textwae.config.schema import GenerationConfig
from textwae.data.records import Example
from textwae.data.splits import load_records
from textwae.evaluation.metrics import corpus_bleu
from textwae.evaluation.stories import SAMPLE_TEMPERATURE, evaluate_stories
from textwae.generation import (
    DecodingConfig,
    FlatStoryLevel,
    Level,
    StoryLevel,
    reconstruct,
    sample,
)
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import story_sentences
from textwae.models.story import STORY_DIR, StoryRun
from textwae.training.pipeline import train

SHOWN = 3  # stories printed per mode


def corpus(name: str) -> tuple[list[str], list[Example], list[Example]]:
    """Overrides that name the data, the held-out stories and the training stories."""
    if name == "roc":
        train_path, valid_path = rocstories_jsonl()
        # the data paths, and names as roles (the one override: a sentence decoded from its
        # own code does not know its story's cast, so otherwise every sentence names someone
        # new); the vocabulary is `auto`
        overrides = [f"data.train={train_path}", f"data.valid={valid_path}",
                     "data.mask_names=true"]
    else:
        overrides = [f"data.train={DEMO_CORPUS}", "data.label_field=label"]
    data = load_config(overrides=overrides).data
    train_stories, valid_stories = load_records(data)
    if name == "roc":
        valid_stories = held_out(valid_path, 300)
    return overrides, valid_stories, train_stories


def scored(name: str, kind: str, level: Level, max_length: int, valid: list[Example],
           train_stories: list[Example], n_samples: int, redraws: int | None = None) -> dict:
    started = time.perf_counter()
    figures = evaluate_stories(level, valid, train_stories, n_samples=n_samples,
                               judge_cache=RESULTS / ".judges", max_length=max_length,
                               redraws=redraws)
    decoding = DecodingConfig(temperature=SAMPLE_TEMPERATURE, max_length=max_length)

    def stories(n: int, mode: int | None, seed: int) -> list[str]:
        return [story.text for story in sample(level, n, decoding, mode, seed,
                                               redraws=redraws)[0]]
    shown = {str(mode): stories(SHOWN, mode, 100 + mode)
             for mode in range(len(level.labels or [None]))} if level.labels else {
        "any": stories(2 * SHOWN, None, 100)}
    print(f"== {name} {kind} ==")
    print(json.dumps({k: figures[k] for k in ("bleu", "samples", "coherence")}, indent=1))
    for mode, texts in shown.items():
        print(f"-- mode {mode}:", *texts, sep="\n   ")
    return {**figures, "shown": shown, "evaluation_seconds": round(time.perf_counter()
                                                                    - started, 1)}


def sentence_bleu(run: Path, stories: list[Example]) -> float:
    """The sentence model's own greedy reconstruction BLEU on the held-out stories' sentences:
    what a story reconstruction can at best pass on."""
    model = TextWAE.from_pretrained(run)
    sentences = [s for story in story_sentences([ex.text for ex in stories]) for s in story]
    rebuilt, _ = reconstruct(model, sentences,
                             DecodingConfig(greedy=True, max_length=model.config.data.max_length))
    return corpus_bleu(rebuilt, sentences)[0]


def scored_paths(run: Path, row: dict, name: str, valid: list[Example],
                 train_stories: list[Example], n_samples: int) -> dict[str, dict]:
    """A story run scored as it samples, with its sentences as decoded (no sentence decoded
    again for a repeat or a pronoun clash: `generation.stories.mend_stories`), and with the other
    choice of redraws of stories it reads as another mode (none if the run redraws, else the
    default count: a run saved before the key keeps every draw)."""
    row["stages"]["story_level"] = final_record(run / STORY_DIR)
    row["stages"]["sentences"]["held_out_bleu"] = sentence_bleu(run, valid)
    story_run = StoryRun.from_pretrained(run)
    other = (0 if story_run.sentences.config.generation.sample_redraws
             else GenerationConfig().sample_redraws)
    rows = {}
    for kind, as_decoded, redraws in (("paths", False, None),
                                      ("paths_as_decoded", True, None),
                                      (f"paths_redraws_{other}", False, other)):
        level = StoryLevel(story_run, as_decoded=as_decoded)
        rows[kind] = {**row, **scored(name, kind, level, story_run.sentences.config.data.max_length,
                                      valid, train_stories, n_samples, redraws)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=["roc", "demo"], default="roc")
    parser.add_argument("--time", type=float, default=600, help="seconds of training per run")
    parser.add_argument("--story-time", type=float, default=60,
                        help="of which the story run's story stage")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument("--only", choices=["paths", "flat"], default=None)
    parser.add_argument("--set", nargs="*", default=[], help="overrides of both runs")
    parser.add_argument("--score", type=Path, default=None, metavar="RUN",
                        help="score a story run trained elsewhere (`make demo`'s, with "
                             "--corpus demo) instead of training")
    add_out_argument(parser, "")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides, valid, train_stories = corpus(args.corpus)
    if args.score is not None:
        rows = scored_paths(args.score, {"run": str(args.score), "stages": {
            "sentences": final_record(args.score)}}, args.corpus, valid, train_stories,
            args.n_samples)
        print(json.dumps({"written": str(write_results(
            args.out or f"stories_{args.corpus}_scored", {"corpus": args.corpus, **machine(),
                                                          "runs": rows}))}))
        return
    budget = list(args.set)  # every other setting as a user gets it
    runs = {
        "paths": ([CONFIGS / "stories.yaml"], [
            *overrides, *budget, f"train.max_time={args.time - args.story_time}",
            f"story.max_time={args.story_time}"]),
        "flat": ([], [*overrides, *budget, "data.unit=story", f"train.max_time={args.time}"]),
    }
    name = args.out or f"stories_{args.corpus}"
    rows = {}
    for kind, (configs, run_overrides) in runs.items():
        if args.only not in (None, kind):
            continue
        run = fresh_run_dir(f"{name}_{kind}")  # by --out: two benchmarks can run side by side
        started = time.perf_counter()
        train(load_config(*configs, overrides=run_overrides), run)
        wall = time.perf_counter() - started
        stages = {"sentences" if kind == "paths" else "stories": final_record(run)}
        row = {"run": str(run.relative_to(ROOT)), "overrides": run_overrides,
               "wall_seconds": round(wall, 1), "stages": stages}
        if kind == "flat":
            model = TextWAE.from_pretrained(run)
            rows[kind] = {**row, **scored(args.corpus, kind, FlatStoryLevel(model),
                                          model.config.data.max_length, valid, train_stories,
                                          args.n_samples)}
            continue
        rows.update(scored_paths(run, row, args.corpus, valid, train_stories, args.n_samples))
    payload = {"corpus": args.corpus, "time": args.time, "story_time": args.story_time,
               "threads": args.threads, **machine(), "runs": rows}
    print(json.dumps({"written": str(write_results(name, payload))}))


if __name__ == "__main__":
    main()
