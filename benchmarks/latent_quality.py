"""Is text decoded away from training codes clean? Ablations of what fills the latent space,
each trained for the same `train.max_time`, two side by side so both see the same load.

    python benchmarks/latent_quality.py [--corpus demo|yelp] [--time 180] [--cases A B ...]
                                        [--parallel 2] [--threads 1] [--sweep NAME]

For each case: held-out greedy reconstruction BLEU, training tokens/s and steps, the code gain
at each validation (nats per token the right code saves over another unit's: whether the
decoder reads z), and on
GENERATED text the clean rate (share of lines whose words all occur in the training split)
and the judge's mode accuracy of prior samples per mode (temperature 0.7 and 1.0, top-p 1;
evaluate's figures sample at the default decoding), the clean rate of interpolation
midpoints between held-out pairs (greedy), and transfers of held-out
sentences to another label's mode by offset arithmetic z + k (mean_target - mean_source) over
strengths k: the judge's target accuracy, BLEU to the inputs and clean rate. The judge is
`LabelJudge` (TF-IDF + logistic regression) on every training unit's label.
`--decoding` adds a sweep of temperature / top-p for sample and transfer (item 4). Samples
are also drawn at the default decoding with codes at 1, 0.8 and 0.6 times each mode's spread
(`sample --code-scale`) and with 0, 2, 4 and 8 redraws (`sample --redraws`); transfers
also with the strength searches of SEARCHES (`transfer --strength K --strength-steps N`).

demo: the embedded corpus with each sentence's register as its label, the `make demo` setup
(4 modes).
yelp: train on sentiment.test.*, validate on sentiment.dev.*, 10% of the labels, 2 modes.
A case is overrides after the pre-issue-9 defaults (lib.baseline), `default` (default.yaml as
it stands) or an experiment YAML over default.yaml (`transformer_mmd`).

Each case runs in its own child process (`--one`), which trains with `train.num_threads`
threads and then scores; the sweep's figures are merged into results/latent_quality.json
under `sweeps[SWEEP]` (default: CORPUS-TIME).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lib.baseline import BEFORE_D64, BEFORE_ISSUE_9
from lib.corpora import yelp_jsonl
from lib.paths import CONFIGS, DEMO_CORPUS, RESULTS, ROOT
from lib.results import machine
from lib.runs import final_record, fresh_run_dir

from textwae import generation
from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.data.splits import load_splits
from textwae.evaluation.evaluate import evaluate
from textwae.evaluation.judges import NgramJudge, load_or_fit
from textwae.evaluation.metrics import (
    LabelJudge,
    clean_rate,
    corpus_bleu,
    distinct_n,
    self_bleu,
    transfer_gmean,
)
from textwae.models import reading
from textwae.models.autoencoder import TextWAE
from textwae.runs.metrics_log import read_metrics
from textwae.training.pipeline import train

RESULTS_FILE = RESULTS / "latent_quality.json"
JUDGES = RESULTS / "runs" / ".judges"  # the n-gram judge of each training corpus, fitted once

# case -> overrides after BEFORE_ISSUE_9; `default` is default.yaml as it stands
CASES: dict[str, list[str]] = {
    "baseline": [],
    "default": None,  # type: ignore[dict-item]
    "enc_drop": ["model.encoder_word_drop=0.3"],  # Shen et al.'s DAAE noise
    "enc_mix": ["model.encoder_word_drop=0.1", "model.encoder_blank=0.1",
                "model.encoder_shuffle=3"],
    "z_noise": ["model.z_noise=0.5"],
    "z_noise_1": ["model.z_noise=1.0"],
    "memory": ["regularizer.code_memory=1024"],
    "prior_x8": ["regularizer.prior_samples=512"],
    "gaussian": ["model.latent=gaussian", "model.logvar_penalty=1.0"],
    "gaussian_0.1": ["model.latent=gaussian", "model.logvar_penalty=0.1"],
    "latent_16": ["model.latent_dim=16"],
    "weight_30": ["regularizer.weight=30.0"],
    "gan": ["model.regularizer=gan", "regularizer.weight=1.0"],
    "memory_256": ["regularizer.code_memory=256"],
    "drop_z": ["model.encoder_word_drop=0.3", "model.z_noise=0.5"],
    "drop_z_memory": ["model.encoder_word_drop=0.3", "model.z_noise=0.5",
                      "regularizer.code_memory=1024"],
    "mix_z1": ["model.encoder_word_drop=0.1", "model.encoder_blank=0.1",
               "model.encoder_shuffle=3", "model.z_noise=1.0"],
    "gaussian_0.1_mix": ["model.latent=gaussian", "model.logvar_penalty=0.1",
                         "model.encoder_word_drop=0.1", "model.encoder_blank=0.1",
                         "model.encoder_shuffle=3"],
    "gaussian_0.01": ["model.latent=gaussian", "model.logvar_penalty=0.01"],
    "z_noise_0.3": ["model.z_noise=0.3"],
    "mix_z0.5": ["model.encoder_word_drop=0.1", "model.encoder_blank=0.1",
                 "model.encoder_shuffle=3", "model.z_noise=0.5"],
    "mix_z0.3": ["model.encoder_word_drop=0.1", "model.encoder_blank=0.1",
                 "model.encoder_shuffle=3", "model.z_noise=0.3"],
    "shuffle_z0.3": ["model.encoder_shuffle=3", "model.z_noise=0.3"],
    # z_noise caps what a code can carry: about D/2 log2(1 + 1/0.5^2) bits at std 1 per dim
    "z_latent_64": ["model.z_noise=0.5", "model.latent_dim=64"],
    "z_latent_128": ["model.z_noise=0.5", "model.latent_dim=128"],
    "z_mode_input": ["model.z_noise=0.5", "model.mode_input=true"],
    "z_mode_input_128": ["model.z_noise=0.5", "model.mode_input=true", "model.latent_dim=128"],
    "mix_z0.3_mode_input": ["model.encoder_word_drop=0.1", "model.encoder_blank=0.1",
                            "model.encoder_shuffle=3", "model.z_noise=0.3",
                            "model.mode_input=true"],
    # on the demo corpus unigram stops at 948 pieces (asked 1000 or 2000) and cuts words
    # ("no bo dy"), 15.8 tokens a sentence; BPE at 2000 keeps its words whole, 11.1 tokens
    "bpe_2000": ["model.z_noise=0.5", "model.mode_input=true", "tokenizer.model_type=bpe",
                 "tokenizer.vocab_size=2000"],
}

# configs/transformer_mmd.yaml before it went to width 128 without dropout
TRANSFORMER_256 = ["model.transformer_dim=256", "model.transformer_ff=1024", "train.lr=0.0005",
                   "model.dropout=0.1"]

# case -> an experiment YAML layered over default.yaml as it stands (not over the pre-issue-9
# defaults), and overrides after it; the cases measured before the code went to 64 numbers
# restate the defaults of then (BEFORE_D64), so that their names keep their meaning
CONFIG_CASES: dict[str, tuple[Path, list[str]]] = {
    "before_d64": (CONFIGS / "default.yaml", BEFORE_D64),
    "transformer_mmd": (CONFIGS / "transformer_mmd.yaml", []),
    # the config before it went to width 128 without dropout (TRANSFORMER_256), and its
    # learning rates: at the GRU's it stalls
    "transformer_256": (CONFIGS / "transformer_mmd.yaml", TRANSFORMER_256),
    "transformer_lr2e-3": (CONFIGS / "transformer_mmd.yaml", [*TRANSFORMER_256, "train.lr=0.002"]),
    # between the two, with a longer warmup
    "transformer_lr1e-3": (CONFIGS / "transformer_mmd.yaml",
                           [*TRANSFORMER_256, "train.lr=0.001", "train.warmup_steps=500"]),
    # half the width at the GRU's learning rate, with dropout
    "transformer_128": (CONFIGS / "transformer_mmd.yaml",
                        [*TRANSFORMER_256, "model.transformer_dim=128", "model.transformer_ff=512",
                         "train.lr=0.002"]),
    # and without: its masks were a tenth of a width-128 step's time, on a budget of a few
    # epochs (word dropout and z noise still regularise). The config since
    "transformer_128_no_dropout": (CONFIGS / "transformer_mmd.yaml",
                                   ["model.transformer_dim=128", "model.transformer_ff=512",
                                    "train.lr=0.002", "model.dropout=0.0"]),
    # the full softmax over every piece, as before the adaptive one (on Yelp's 8,000 pieces
    # the full output layer is most of a step)
    "full_softmax": (CONFIGS / "default.yaml", [*BEFORE_D64, "model.output_cutoffs=null"]),
    # more room in the code at today's defaults: with noise of std s on a code of spread 1
    # per dimension, D dimensions carry about D/2 ln(1 + 1/s^2) nats (Gaussian channel), 26
    # at D 32 and s 0.5, where a Yelp sentence holds ~70 under its decoder without the code.
    "z_noise_0.25": (CONFIGS / "default.yaml", [*BEFORE_D64, "model.z_noise=0.25"]),
    "latent_64": (CONFIGS / "default.yaml", [*BEFORE_D64, "model.latent_dim=64"]),
    # can the regulariser or the noise fill the thin directions a wider code leaves
    # (evaluate's thin_directions)?
    "latent_64_weight_30": (CONFIGS / "default.yaml",
                            [*BEFORE_D64, "model.latent_dim=64", "regularizer.weight=30.0"]),
    "latent_64_z0.7": (CONFIGS / "default.yaml",
                       [*BEFORE_D64, "model.latent_dim=64", "model.z_noise=0.7"]),
    # or a covariance match (regularizer.spread_weight), on the batch and 640 recent codes
    "latent_64_spread": (CONFIGS / "default.yaml",
                         [*BEFORE_D64, "model.latent_dim=64", "regularizer.code_memory=640",
                          "regularizer.spread_weight=1.0"]),
    # each label's codes matched to its own mode (regularizer.label_mmd_weight)
    # today's default without dropout, as the Transformer config trains best on a CPU budget
    "no_dropout": (CONFIGS / "default.yaml", ["model.dropout=0.0"]),
    # today's defaults with less noise on z: a channel of ~80 nats at D 64 against ~51,
    # now that redraws and the transfer search keep samples and transfers in their mode
    "z_noise_0.3_d64": (CONFIGS / "default.yaml", ["model.z_noise=0.3"]),
    # is Yelp after 600 s short of training rather than of room (docs/results.md, "Sentences
    # on Yelp, twice the time")? a larger step, sqrt(2) times the learning rate
    "lr_2.8e-3": (CONFIGS / "default.yaml", ["train.lr=0.0028"]),
    # more steps in the same time: the forward under bf16 autocast, on a CPU with bf16
    # arithmetic
    "bf16": (CONFIGS / "default.yaml", ["train.precision=bf16"]),
    # more tokens a second: a larger batch (a Yelp step at 256 trains 1.48x the tokens/s of
    # one at 128 on 2 threads, 100 s probe), the learning rate scaled by the batch's sqrt
    "batch_256": (CONFIGS / "default.yaml", ["train.batch_size=256", "train.lr=0.0028"]),
    "batch_512": (CONFIGS / "default.yaml", ["train.batch_size=512", "train.lr=0.004"]),
    "label_mmd": (CONFIGS / "default.yaml", [*BEFORE_D64, "regularizer.label_mmd_weight=10.0"]),
    "label_mmd_3": (CONFIGS / "default.yaml", [*BEFORE_D64, "regularizer.label_mmd_weight=3.0"]),
    "latent_64_label_mmd": (CONFIGS / "default.yaml",
                            [*BEFORE_D64, "model.latent_dim=64",
                             "regularizer.label_mmd_weight=10.0"]),
    "latent_64_label_mmd_3": (CONFIGS / "default.yaml",
                              [*BEFORE_D64, "model.latent_dim=64",
                               "regularizer.label_mmd_weight=3.0"]),
}
CASES.update(dict.fromkeys(CONFIG_CASES))

STRENGTHS = [0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0]
SEARCHES = [(1.0, 4), (1.5, 6), (2.0, 8), (2.5, 10), (3.0, 12)]  # up to k in n steps of 0.25
LANDED_BARS = [0.5, 0.9]  # p(target | z) that ends a search (textwae.models.reading.LANDED)
REDRAWS = [0, 2, 4, 8]  # `sample --redraws`, at the default decoding
DECODING_STRENGTHS = [1.0, 2.0]
CODE_SCALES = [1.0, 0.8, 0.6]  # `sample --code-scale`, at the default decoding
SAMPLE_TEMPERATURES = [0.7, 1.0]  # with top-p 1, as before the decoding defaults moved
# every option named, so that a sweep's labels keep their meaning when the defaults move
DECODING_SWEEP = [{"temperature": 0.5, "top_p": 1.0}, {"temperature": 0.7, "top_p": 1.0},
                  {"temperature": 1.0, "top_p": 1.0}, {"temperature": 1.0, "top_p": 0.9},
                  {"temperature": 0.7, "top_p": 0.9}, {"greedy": True}]


def corpus_overrides(corpus: str, seconds: float, threads: int) -> list[str]:
    """What a user gives: the data, its label options, the time and the threads; every other
    setting is the default (the corpus-dependent ones `auto`)."""
    common = [f"train.max_time={seconds}", f"train.num_threads={threads}",
              "data.label_field=label"]
    if corpus == "demo":
        return [f"data.train={DEMO_CORPUS}", "data.sentence_label_field=sentence_labels",
                *common]
    return [f"data.train={yelp_jsonl('test')}", f"data.valid={yelp_jsonl('dev')}",
            "data.labeled_fraction=0.1", *common]


def case_overrides(case: str) -> list[str]:
    if case in CONFIG_CASES:
        return CONFIG_CASES[case][1]
    extra = CASES[case]
    return [] if extra is None else [*BEFORE_ISSUE_9, *extra]


def case_description(case: str) -> list[str] | str:
    """What a case changes: its overrides after BEFORE_ISSUE_9, its YAML, or `default`."""
    if case in CONFIG_CASES:
        path, extra = CONFIG_CASES[case]
        return " ".join([str(path.relative_to(CONFIGS.parent)), *extra])
    return CASES[case] if CASES[case] is not None else "default"


# -- one case, in a child process ---------------------------------------------------------

def run_case(case: str, corpus: str, seconds: float, threads: int, run: Path,
             n: int, decoding_sweep: bool, common: list[str]) -> dict[str, Any]:
    """Train `case` into `run` and score it; `common` overrides every case's config before
    the case's own overrides."""
    torch.set_num_threads(threads)
    overrides = [*corpus_overrides(corpus, seconds, threads), *common, *case_overrides(case)]
    config = load_config(CONFIGS / "default.yaml",
                         *([CONFIG_CASES[case][0]] if case in CONFIG_CASES else []),
                         overrides=overrides)
    started = time.perf_counter()
    train(config, run)
    wall = time.perf_counter() - started
    return {"case": case, "overrides": case_description(case),
            "wall_seconds": round(wall, 1), **scored_run(run, n, decoding_sweep)}


def scored_run(run: Path, n: int, decoding_sweep: bool) -> dict[str, Any]:
    """A trained run's steps, speed and validation loss, how the code gain (nats per token the
    right code saves: does the decoder read z?) grew over its validations, and its `score`."""
    last = final_record(run)
    model = TextWAE.from_pretrained(run)
    train_units, valid_units = load_splits(model.config.data)
    curve = [[record["step"], round(record["recon"], 3), round(record["code_gain"], 3)]
             for record in read_metrics(run)["valid"] if "code_gain" in record]
    return {"steps": last["step"], "train_tokens_per_second": last["tokens_per_second"],
            "valid_recon": last.get("recon"), "code_gain_curve": curve,
            **score(model, train_units, valid_units, n, decoding_sweep)}


def score_run(run: Path, threads: int, n: int, decoding_sweep: bool) -> None:
    """Score a run trained elsewhere (`make demo`'s, say) into RUN/latent_quality.json."""
    torch.set_num_threads(threads)
    result = {"case": str(run), "overrides": "a trained run",
              **scored_run(run, n, decoding_sweep)}
    write_figures(run, result)
    print(summary_line(result))


def write_figures(run: Path, result: dict[str, Any]) -> None:
    """A run's figures into RUN/latent_quality.json, where `collect` reads them."""
    (run / "latent_quality.json").write_text(json.dumps(result, indent=2) + "\n",
                                             encoding="utf-8")


@dataclass
class Judges:
    """The label judge and the n-gram judge of the training split, and the latter's
    perplexity on held-out text (the denominator of judge_ppl_ratio)."""

    labels: LabelJudge
    fluency: NgramJudge
    real_perplexity: float

    def read(self, texts: list[str]) -> dict[str, float]:
        return {"clean": round(clean_rate(texts, self.fluency.known_words), 3),
                "ppl_ratio": round(self.fluency.perplexity(texts) / self.real_perplexity, 3)}


def score(model: TextWAE, train_units: list[Example], valid_units: list[Example], n: int,
          decoding_sweep: bool) -> dict[str, Any]:
    max_length = model.config.data.max_length
    labelled = [unit for unit in train_units if unit.label is not None]
    held = random.Random(0).sample(valid_units, min(1000, len(valid_units)))
    fluency = load_or_fit([unit.text for unit in train_units], cache_dir=JUDGES)
    judges = Judges(LabelJudge().fit([u.text for u in labelled], [str(u.label) for u in labelled]),
                    fluency, fluency.perplexity([u.text for u in held]))
    labels = model.config.prior.labels or []
    figures: dict[str, Any] = {}

    evaluated = evaluate(model, held, train_units, n_samples=n, judge_cache=JUDGES)
    figures["bleu"] = round(evaluated["bleu"], 2)
    figures["evaluate"] = {key: value for key, value in evaluated.items()
                           if key not in ("bleu_signature", "interpolation")}
    figures["judge_on_held_out"] = round(judges.labels.accuracy(
        [u.text for u in held], [str(u.label) for u in held]), 3)

    figures["samples"] = {
        f"t{t}": sample_figures(model, labels, judges, n,
                                generation.DecodingConfig(temperature=t, top_p=1.0,
                                                          max_length=max_length))
        for t in SAMPLE_TEMPERATURES}
    figures["code_scale"] = {
        f"s{scale}": sample_figures(model, labels, judges, n,
                                    generation.DecodingConfig(max_length=max_length), scale)
        for scale in CODE_SCALES}
    figures["redraws"] = {
        f"r{redraws}": sample_figures(model, labels, judges, n,
                                      generation.DecodingConfig(max_length=max_length),
                                      redraws=redraws)
        for redraws in REDRAWS}
    figures["midpoints"] = midpoint_figures(model, held, judges, n)
    sources = [u for u in held if u.label in labels][: 2 * n]
    greedy = generation.DecodingConfig(greedy=True, max_length=max_length)
    figures["transfer"] = {f"k{k}": transfer_figures(model, sources, labels, judges, greedy, k, 1)
                           for k in STRENGTHS}
    figures["transfer"]["search"] = transfer_figures(model, sources, labels, judges, greedy)
    figures["transfer_search"] = search_figures(model, sources, labels, judges, greedy)
    if decoding_sweep:
        figures["decoding"] = []
        for options in DECODING_SWEEP:
            decoding = generation.DecodingConfig(max_length=max_length, **options)
            figures["decoding"].append({
                "decoding": options,
                "samples": sample_figures(model, labels, judges, n, decoding),
                "transfer": {f"k{k}": transfer_figures(model, sources, labels, judges,
                                                       decoding, k, 1)
                             for k in DECODING_STRENGTHS}})
    return figures


def sample_figures(model: TextWAE, labels: list[str], judges: Judges, n: int,
                   decoding: generation.DecodingConfig, code_scale: float = 1.0,
                   redraws: int | None = None) -> dict[str, Any]:
    """n samples of every mode (codes at `code_scale` times its spread, `redraws` as `sample`
    takes it): clean rate, judge perplexity ratio, diversity and (for labelled modes) the
    label judge's accuracy."""
    per_mode, every, correct, judged = {}, [], 0, 0
    for mode in range(model.prior.components):
        texts, _ = generation.sample(model, n, decoding, mode=mode, seed=mode,
                                     code_scale=code_scale, redraws=redraws)
        every += texts
        entry: dict[str, Any] = judges.read(texts)
        if mode < len(labels):
            hits = sum(p == labels[mode] for p in judges.labels.predict(texts))
            entry["accuracy"] = round(hits / n, 3)
            correct, judged = correct + hits, judged + n
        entry["examples"] = texts[:5]
        per_mode[labels[mode] if mode < len(labels) else str(mode)] = entry
    return {**judges.read(every), "accuracy": round(correct / judged, 3) if judged else None,
            **diversity(every), "modes": per_mode}


def diversity(texts: list[str]) -> dict[str, float]:
    """distinct-2, Self-BLEU (of 300) and the share of distinct lines: a cleaner sampler
    that repeats itself is no better."""
    return {"distinct_2": round(distinct_n(texts, 2), 3),
            "self_bleu": round(self_bleu(texts, max_texts=300), 1),
            "unique": round(len(set(texts)) / len(texts), 3)}


def decoding_diversity(args: argparse.Namespace, sweep: str) -> dict[str, Any]:
    """Diversity of every mode's samples (as `sample_figures` draws them) under each option
    of DECODING_SWEEP, for the sweep's finished runs, and of as many real training units."""
    figures: dict[str, Any] = {}
    for name in (name for group in groups_of(args) for name in group):
        model = TextWAE.from_pretrained(RESULTS / "runs" / f"latent-{sweep}-{name}")
        figures[name] = []
        for options in DECODING_SWEEP:
            decoding = generation.DecodingConfig(max_length=model.config.data.max_length,
                                                 **options)
            texts = [text for mode in range(model.prior.components)
                     for text in generation.sample(model, args.n, decoding, mode=mode,
                                                   seed=mode)[0]]
            figures[name].append({"decoding": options, **diversity(texts)})
    train_units = load_splits(model.config.data)[0]
    count = args.n * model.prior.components
    real = [u.text for u in random.Random(0).sample(train_units, count)]
    figures["real_training_units"] = diversity(real)
    return figures


def midpoint_figures(model: TextWAE, held: list[Example], judges: Judges,
                     n: int) -> dict[str, Any]:
    """Greedy decoding of the midpoint of n random pairs of held-out units' codes."""
    rng = random.Random(1)
    pairs = [rng.sample(held, 2) for _ in range(n)]
    a = generation.encode(model, [p[0].text for p in pairs]).mean  # (n, D)
    b = generation.encode(model, [p[1].text for p in pairs]).mean
    decoding = generation.DecodingConfig(greedy=True, max_length=model.config.data.max_length)
    texts = generation.decode_texts(model, (a + b) / 2, decoding)
    return {**judges.read(texts),
            "examples": [{"a": p[0].text, "b": p[1].text, "mid": t}
                         for p, t in zip(pairs[:5], texts[:5], strict=True)]}


def transfer_figures(model: TextWAE, sources: list[Example], labels: list[str],
                     judges: Judges, decoding: generation.DecodingConfig,
                     strength: float | None = None, steps: int | None = None,
                     ) -> dict[str, Any]:
    """Each source to the next label's mode (cyclically), z + k (mean_target - mean_source),
    k searched up to `strength` in `steps` (None: the run's own; one step: k alone): the label
    judge's accuracy, BLEU to the inputs, their geometric mean, clean rate."""
    label_map = {label: k for k, label in enumerate(labels)}
    targets = [labels[(label_map[u.label] + 1) % len(labels)] for u in sources]
    inputs, wanted, outputs = [], [], []
    for target in labels:
        chosen = [u.text for u, t in zip(sources, targets, strict=True) if t == target]
        if chosen:
            inputs += chosen
            wanted += [target] * len(chosen)
            outputs += generation.transfer(model, chosen, label_map[target], decoding,
                                           strength=strength, steps=steps)[0]
    accuracy = judges.labels.accuracy(outputs, wanted)
    bleu = corpus_bleu(outputs, inputs)[0]
    return {"accuracy": round(accuracy, 3), "bleu_to_input": round(bleu, 2),
            "gmean": round(transfer_gmean(accuracy, bleu), 2), **judges.read(outputs),
            "examples": [{"input": a, "to": t, "output": b}
                         for a, t, b in list(zip(inputs, wanted, outputs, strict=True))[:: max(
                             1, len(outputs) // 6)][:6]]}


def search_figures(model: TextWAE, sources: list[Example], labels: list[str],
                   judges: Judges, decoding: generation.DecodingConfig) -> dict[str, Any]:
    """`transfer_figures` of each strength search of SEARCHES, ended at each of LANDED_BARS:
    the curve to set beside one k's."""
    figures = {}
    for bar in LANDED_BARS:
        reading.LANDED, kept = bar, reading.LANDED
        try:
            for largest, steps in SEARCHES:
                figures[f"up to {largest:g} in {steps}, p {bar:g}"] = transfer_figures(
                    model, sources, labels, judges, decoding, largest, steps)
        finally:
            reading.LANDED = kept
    return figures


# -- the sweep: children two at a time ----------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=["demo", "yelp"], default="demo")
    parser.add_argument("--time", type=float, default=180, help="train.max_time per case")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--parallel", type=int, default=2, help="cases trained at once")
    parser.add_argument("--paired", default=None, choices=list(CASES),
                        help="train each case beside its own run of this case")
    parser.add_argument("--threads", type=int, default=1, help="train.num_threads per case")
    parser.add_argument("--n", type=int, default=200, help="samples per mode, pairs, transfers")
    parser.add_argument("--decoding", action="store_true", help="also sweep decoding options")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides of every case (a seed, say), before the case's own")
    parser.add_argument("--sweep", default=None,
                        help="key under sweeps (default CORPUS-TIME, -paired-REF if paired)")
    parser.add_argument("--collect", action="store_true",
                        help="write the sweep from the cases' finished run directories")
    parser.add_argument("--diversity", action="store_true",
                        help="add the samples' diversity under each decoding option to a "
                             "finished sweep")
    parser.add_argument("--score", type=Path, default=None, metavar="RUN",
                        help="score a trained run directory (a `make demo` run, say) as a "
                             "case is scored, into RUN/latent_quality.json, and stop")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one case
    args = parser.parse_args()
    if args.score is not None:
        score_run(args.score, args.threads, args.n, args.decoding)
        return
    sweep = args.sweep or (f"{args.corpus}-{args.time:g}"
                           + (f"-paired-{args.paired}" if args.paired else ""))
    if args.one is not None:  # NAME is a case, or REF@CASE: REF trained beside CASE
        run = fresh_run_dir(f"latent-{sweep}-{args.one}")
        result = run_case(args.one.split("@")[0], args.corpus, args.time, args.threads, run,
                          args.n, args.decoding, args.set)
        result["case"] = args.one
        write_figures(run, result)
        return
    payload = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}
    if args.diversity:  # added to a finished sweep
        torch.set_num_threads(args.threads)
        payload["sweeps"][sweep]["decoding_diversity"] = decoding_diversity(args, sweep)
        RESULTS_FILE.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(payload["sweeps"][sweep]["decoding_diversity"], indent=1))
        return
    results = collect(args, sweep) if args.collect else run_side_by_side(args, sweep)
    payload = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}
    payload.setdefault("sweeps", {})[sweep] = {
        "corpus": args.corpus, "max_time": args.time, "threads": args.threads,
        "parallel": 2 if args.paired else args.parallel, "paired_with": args.paired,
        "set": args.set,
        "machine": machine(),
        "command": " ".join(["python", "benchmarks/latent_quality.py", *sys.argv[1:]]),
        "cases": results}
    RESULTS_FILE.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    for case in results:
        print(summary_line(case))
    print(json.dumps({"written": str(RESULTS_FILE)}))


def groups_of(args: argparse.Namespace) -> list[list[str]]:
    """The runs trained at once: `args.parallel` cases, or each case beside its own REF."""
    if args.paired:
        return [[f"{args.paired}@{case}", case] for case in args.cases]
    return [args.cases[start : start + args.parallel]
            for start in range(0, len(args.cases), args.parallel)]


def run_figures(sweep: str, name: str) -> dict[str, Any]:
    return json.loads((RESULTS / "runs" / f"latent-{sweep}-{name}" / "latent_quality.json")
                      .read_text())


def collect(args: argparse.Namespace, sweep: str) -> list[dict[str, Any]]:
    """The figures of runs already finished (a sweep stopped part way, for one)."""
    return [run_figures(sweep, name) for group in groups_of(args) for name in group]


def run_side_by_side(args: argparse.Namespace, sweep: str) -> list[dict[str, Any]]:
    """Every case in a child, `args.parallel` at a time, in the order given; with `--paired
    REF`, each case beside its own run of REF (named REF@CASE), which then saw the same load."""
    results = []
    for group in groups_of(args):
        children = [subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--one", name,
             "--corpus", args.corpus, "--time", str(args.time), "--threads", str(args.threads),
             "--n", str(args.n), "--sweep", sweep, *(["--decoding"] if args.decoding else []),
             "--set", *args.set],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in group]
        for name, child in zip(group, children, strict=True):
            if child.wait() != 0:
                raise SystemExit(f"case {name} failed (exit status {child.returncode})")
            results.append(run_figures(sweep, name))
            print(summary_line(results[-1]), file=sys.stderr, flush=True)
    return results


def summary_line(case: dict[str, Any]) -> str:
    """One case's figures: BLEU, speed; samples (t 0.7 here, evaluate's at the default decoding),
    midpoints and transfers: clean rate, ppl ratio, accuracy; transfers over k: accuracy / BLEU
    to input."""
    ours, theirs = case["samples"]["t0.7"], case["evaluate"].get("samples", {})
    mid = case["evaluate"].get("interpolation_midpoints", {})
    transfer = " ".join(f"{k}:{v['accuracy']:.2f}/{v['bleu_to_input']:.0f}"
                        for k, v in case["transfer"].items())
    return (f"{case['case']:>22} bleu {case['bleu']:5.1f} code gain "
            f"{case['evaluate'].get('code_gain', float('nan')):.2f} tok/s "
            f"{case['train_tokens_per_second']:6.0f} steps {case['steps']:5d} | samples t0.7 "
            f"clean {ours['clean']:.2f} ppl {ours.get('ppl_ratio', float('nan')):.2f} acc "
            f"{ours['accuracy']:.2f}, evaluate's clean "
            f"{theirs.get('clean_rate', float('nan')):.2f} | mid clean "
            f"{mid.get('clean_rate', float('nan')):.2f} | transfer {transfer}")


if __name__ == "__main__":
    main()
