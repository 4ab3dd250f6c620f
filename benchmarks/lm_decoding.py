"""A pretrained LM in decoding (generation.lm): the run's decoder alone, reranking with
K candidates, and shallow fusion, side by side on the same trained runs.

    python benchmarks/lm_decoding.py --corpus yelp [--run DIR] [--fusion-run DIR] [--n 50]
    python benchmarks/lm_decoding.py --corpus roc [--run DIR] [--n 50]

yelp: train on sentiment.test.*, validate on sentiment.dev.*, 10% of the labels, 2 modes;
roc: ROCStories as paths of sentence codes (configs/stories.yaml, names as roles), 300 held-out
stories. Without --run the script trains one with the README's defaults (the data, its label
options, --time on --threads) into results/runs/lm_decoding_CORPUS; the fusion run (yelp)
adds tokenizer.type=lm, the decoder speaking the LM's pieces, which fusion needs.

Each setting decodes at the run's own generation defaults (temperature, top-p) and is read by
the LM judge (SmolLM2 against real held-out lines: the fluent share, and the median perplexity
over the real lines'), beside the n-gram judge of the training split, which no setting
consults; an LM judge flatters text its own LM chose. Also: samples in their own mode (a
TF-IDF judge of the training labels), copy rate, diversity, seconds per 100 samples, transfers
to the other mode (target accuracy, BLEU to the input), interpolation midpoints; for stories,
their sentences. Twenty outputs of each setting are kept in the JSON to be read.
Writes results/OUT.json (default lm_decoding_CORPUS).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
from lib.corpora import held_out, rocstories_jsonl, yelp_jsonl
from lib.paths import CONFIGS, RESULTS
from lib.results import add_out_argument, machine, write_results
from lib.runs import final_record, fresh_run_dir

from textwae import generation
from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.data.splits import load_splits
from textwae.evaluation.judges import load_or_fit
from textwae.evaluation.lm_judge import DEFAULT_LM, LMJudge, judge_language_model
from textwae.evaluation.metrics import (
    LabelJudge,
    clean_rate,
    copy_rate,
    corpus_bleu,
    distinct_n,
    self_bleu,
    unit_set,
)
from textwae.generation import DecodingConfig, StoryLevel
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import story_sentences
from textwae.models.story import StoryRun
from textwae.training.pipeline import train

JUDGES = RESULTS / "judges"
SHOWN = 20  # outputs of each setting kept to be read
RERANK_CANDIDATES = [2, 4, 8, 16]
RERANK_WEIGHTS = [0.0, 0.25, 0.75, 1.0]  # at WEIGHT_CANDIDATES, beside the default weight
WEIGHT_CANDIDATES = 4
FUSION_WEIGHTS = [0.0, 0.25, 0.5, 1.0]
MIDPOINT_PAIRS = 20


def corpus_overrides(corpus: str, seconds: float, threads: int) -> list[str]:
    """What a user gives: the data, its label options, the time and the threads."""
    common = [f"train.max_time={seconds}", f"train.num_threads={threads}"]
    if corpus == "yelp":
        return [f"data.train={yelp_jsonl('test')}", f"data.valid={yelp_jsonl('dev')}",
                "data.labeled_fraction=0.1", "data.label_field=label", *common]
    train_path, valid_path = rocstories_jsonl()
    return [f"data.train={train_path}", f"data.valid={valid_path}", "data.mask_names=true",
            *common]


def trained(corpus: str, name: str, extra: list[str], args: argparse.Namespace) -> Path:
    """A run of the README's defaults (configs/stories.yaml for roc) trained into
    results/runs/NAME."""
    run = fresh_run_dir(name)
    configs = [CONFIGS / "default.yaml"] + ([CONFIGS / "stories.yaml"] if corpus == "roc" else [])
    train(load_config(*configs, overrides=[*corpus_overrides(corpus, args.time, args.threads),
                                           *extra]), run)
    return run


@dataclasses.dataclass
class Readers:
    """What reads the outputs: the LM judge, the n-gram judge and its held-out perplexity,
    the label judge, and the training units (copies)."""

    lm: LMJudge
    ngram: Any
    real_ngram_perplexity: float
    labels: LabelJudge | None
    training: frozenset[str]

    def read(self, texts: list[str]) -> dict[str, Any]:
        return {**{k: round(v, 3) for k, v in self.lm.scores(texts).items()},
                "clean_rate": round(clean_rate(texts, self.ngram.known_words), 3),
                "judge_ppl_ratio": round(self.ngram.perplexity(texts)
                                         / self.real_ngram_perplexity, 3)}


def readers(train_units: list[Example], held: list[str]) -> Readers:
    labelled = [u for u in train_units if u.label is not None]
    ngram = load_or_fit([u.text for u in train_units], cache_dir=JUDGES)
    name, lm = judge_language_model(DEFAULT_LM)
    return Readers(LMJudge(name, lm, held), ngram, ngram.perplexity(held),
                   LabelJudge().fit([u.text for u in labelled], [str(u.label) for u in labelled])
                   if labelled else None, unit_set(u.text for u in train_units))


def sentence_settings(fusion: bool) -> dict[str, dict[str, Any]]:
    """Name -> DecodingConfig options beyond the run's defaults."""
    settings: dict[str, dict[str, Any]] = {"decoder alone": {"lm": None}}
    for k in RERANK_CANDIDATES:
        settings[f"rerank K={k}"] = {"lm": DEFAULT_LM, "lm_candidates": k}
    for weight in RERANK_WEIGHTS:
        settings[f"rerank K={WEIGHT_CANDIDATES} w={weight:g}"] = {
            "lm": DEFAULT_LM, "lm_candidates": WEIGHT_CANDIDATES, "lm_weight": weight}
    if fusion:
        for weight in FUSION_WEIGHTS:
            settings[f"fusion {weight:g}"] = {"lm": DEFAULT_LM, "lm_candidates": 1,
                                              "lm_fusion": weight}
    return settings


def sentence_figures(model: TextWAE, decoding: DecodingConfig, readers: Readers,
                     sources: list[Example], pairs: list[tuple[str, str]], n: int) -> dict:
    """n samples of each mode, a transfer of each source to the other mode, and the midpoint
    of each pair, decoded with `decoding`."""
    labels = model.config.prior.labels or []
    samples, wanted, started = [], [], time.perf_counter()
    for mode in range(model.prior.components):
        texts, _ = generation.sample(model, n, decoding, mode=mode, seed=mode)
        samples += texts
        wanted += [labels[mode] if mode < len(labels) else None] * n
    seconds = time.perf_counter() - started
    judged = [(t, w) for t, w in zip(samples, wanted, strict=True) if w is not None]
    figures: dict[str, Any] = {
        "samples": {**readers.read(samples),
                    "in_mode": round(readers.labels.accuracy(*zip(*judged, strict=True)), 3)
                    if judged and readers.labels else None,
                    "copy_rate": round(copy_rate(samples, readers.training), 3),
                    "distinct_2": round(distinct_n(samples, 2), 3),
                    "self_bleu": round(self_bleu(samples, max_texts=300), 1),
                    "seconds_per_100": round(100 * seconds / len(samples), 1),
                    "examples": samples[:: max(1, len(samples) // SHOWN)][:SHOWN]}}
    if labels and sources:
        inputs, targets, outputs = [], [], []
        for target in labels:
            chosen = [u.text for u in sources if u.label != target]
            inputs += chosen
            targets += [target] * len(chosen)
            outputs += generation.transfer(model, chosen, target, decoding)[0]
        figures["transfers"] = {
            **readers.read(outputs),
            "accuracy": round(readers.labels.accuracy(outputs, targets), 3),
            "bleu_to_input": round(corpus_bleu(outputs, inputs)[0], 2),
            "examples": [{"input": a, "to": t, "output": b} for a, t, b in list(
                zip(inputs, targets, outputs, strict=True))[:: max(1, len(outputs) // SHOWN)]]}
    codes = generation.encode(model, [text for pair in pairs for text in pair]).mean
    middles = generation.decode_texts(model, (codes[0::2] + codes[1::2]) / 2, decoding)
    figures["midpoints"] = {**readers.read(middles), "examples": [
        {"a": a, "b": b, "mid": m} for (a, b), m in zip(pairs, middles, strict=True)][:SHOWN]}
    return figures


def story_figures(run: StoryRun, decoding: DecodingConfig, readers: Readers, n: int) -> dict:
    """n sampled stories of each mode: their sentences read by the judges."""
    level = StoryLevel(run)
    stories, started = [], time.perf_counter()
    for mode in range(level.prior.components):
        stories += generation.sample(level, n, decoding, mode=mode, seed=mode)[0]
    seconds = time.perf_counter() - started
    sentences = [s for story in stories for s in story.sentences] or [""]
    return {"sentences": {**readers.read(sentences),
                          "copy_rate": round(copy_rate(sentences, readers.training), 3)},
            "stories": len(stories), "sentences_per_story": round(len(sentences) / len(stories), 2),
            "seconds_per_100_stories": round(100 * seconds / len(stories), 1),
            "examples": [story.text for story in stories[:: max(1, len(stories) // SHOWN)]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=["yelp", "roc"], default="yelp")
    parser.add_argument("--run", type=Path, default=None, help="a trained run to decode from")
    parser.add_argument("--fusion-run", type=Path, default=None,
                        help="yelp: a trained run with tokenizer.type=lm (else trained)")
    parser.add_argument("--no-fusion", action="store_true", help="leave fusion out")
    parser.add_argument("--time", type=float, default=600, help="train.max_time of new runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=50, help="samples per mode, transfers per mode")
    parser.add_argument("--settings", nargs="*", default=None, help="only these settings")
    parser.add_argument("--add", action="store_true",
                        help="keep the other settings of an earlier OUT.json (a setting "
                             "measured again replaces its figures)")
    add_out_argument(parser, "lm_decoding_CORPUS")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out.replace("CORPUS", args.corpus)
    run = args.run or trained(args.corpus, f"{out}_run", [], args)
    result: dict[str, Any] = {"corpus": args.corpus, "n": args.n,
                              "machine": machine(), "command": " ".join(sys.argv),
                              "runs": {"decoder": {"path": str(run),
                                                   "steps": final_record(run)["step"]}},
                              "settings": {}}
    earlier = RESULTS / f"{out}.json"
    if args.add and earlier.is_file():
        result["settings"] = json.loads(earlier.read_text(encoding="utf-8"))["settings"]
    if args.corpus == "roc":
        story_run = StoryRun.from_pretrained(run)
        train_units, valid_units = load_splits(story_run.sentences.config.data)
        held = [s for u in held_out(rocstories_jsonl()[1], 300) for s in
                story_sentences([u.text])[0]]
        readers_ = readers([Example(s) for u in train_units for s in story_sentences([u.text])[0]],
                           held)
        result["lm_judge"] = readers_.lm.description()
        for name, options in sentence_settings(fusion=False).items():
            if args.settings and name not in args.settings:
                continue
            decoding = DecodingConfig.of(story_run.sentences.config.generation, **options)
            result["settings"][name] = {**story_figures(story_run, decoding, readers_, args.n),
                                        "threads": args.threads}
            print(name, result["settings"][name]["sentences"], file=sys.stderr)
            write_results(out, result)
        return
    model = TextWAE.from_pretrained(run)
    train_units, valid_units = load_splits(model.config.data)
    held = [u.text for u in random.Random(0).sample(valid_units, min(1000, len(valid_units)))]
    readers_ = readers(train_units, held)
    result["lm_judge"] = readers_.lm.description()
    sources = random.Random(1).sample([u for u in valid_units if u.label], args.n * 2)
    rng = random.Random(2)
    pairs = [tuple(rng.sample(held, 2)) for _ in range(MIDPOINT_PAIRS)]
    models = {"decoder": model}
    if not args.no_fusion:
        fusion_run = args.fusion_run or trained(
            "yelp", f"{out}_fusion_run", ["tokenizer.type=lm", f"generation.lm={DEFAULT_LM}"],
            args)
        result["runs"]["fusion"] = {"path": str(fusion_run),
                                    "steps": final_record(fusion_run)["step"]}
        models["fusion"] = TextWAE.from_pretrained(fusion_run)
    for name, options in sentence_settings(fusion=not args.no_fusion).items():
        if args.settings and name not in args.settings:
            continue
        for kind, chosen in models.items():
            if name.startswith("fusion") != (kind == "fusion") and name != "decoder alone":
                continue
            key = name if kind == "decoder" else f"{name} (LM-piece run)"
            decoding = DecodingConfig.of(chosen.config.generation, **options)
            result["settings"][key] = {**sentence_figures(chosen, decoding, readers_, sources,
                                                          pairs, args.n),
                                       "threads": args.threads}
            print(key, {k: v for k, v in result["settings"][key]["samples"].items()
                        if k != "examples"}, file=sys.stderr)
            write_results(out, result)


if __name__ == "__main__":
    main()
