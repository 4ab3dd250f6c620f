"""Write docs/results.md from benchmarks/results/*.json: the current figures, one table each.

    python benchmarks/write_results.py [--check]

Each section names the command that measured it, the machine its JSON records and the date
git gives the measurement (the last commit that changed that record). SECTIONS lists the
measurements that are current; SUPERSEDED the result files that later ones replaced, kept
for their history. A result file in neither stops the script, so a new measurement is
placed on purpose. `--check` writes nothing and exits 1 when docs/results.md is out of date.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from lib.paths import RESULTS, ROOT

DOC = ROOT / "docs" / "results.md"
Record = dict[str, Any]
Table = tuple[list[str], list[list[str]]]  # header, rows


@dataclass(frozen=True)
class Section:
    """One table of docs/results.md: where its figures are and how they read."""

    title: str
    file: str  # under benchmarks/results/
    command: str  # what measured it; a latent_quality sweep names its own
    what: str  # one sentence: what was measured and what it settles
    table: Callable[[Record], Table]
    sweep: str | None = None  # a sweep of latent_quality.json


# ---- number formats ------------------------------------------------------------------------

def num(value: float | None, digits: int = 3) -> str:
    """A figure rounded for reading; a missing one is blank."""
    return "" if value is None else f"{value:,.{digits}f}"


def per_label(accuracies: dict[str, float] | None) -> str:
    """Accuracy per label, in the labels' sorted order, joined by slashes."""
    if not accuracies:
        return ""
    return " / ".join(num(accuracies[k]) for k in sorted(accuracies))


def labels_of(accuracies: dict[str, float] | None) -> str:
    return " / ".join(sorted(accuracies or {}))


def overrides_of(overrides: str | list[str]) -> str:
    """A case's overrides as one command-line string (early sweeps kept a list; [] is the
    default of its day)."""
    if overrides == "default":
        return "default"
    text = overrides if isinstance(overrides, str) else " ".join(overrides)
    return f"`{text}`" if text else "default"


# ---- tables --------------------------------------------------------------------------------

def sentence_cases(sweep: Record) -> Table:
    """evaluate() of each case of a latent_quality sweep."""
    labels = labels_of(sweep["cases"][0]["evaluate"].get("mode_accuracy"))
    header = ["case", "overrides", "steps", "tokens/s", "held-out BLEU", "code gain",
              "samples clean", "judge ppl ratio", f"samples in their mode ({labels})",
              "transfer in target", "transfer BLEU to input"]
    rows = []
    for case in sweep["cases"]:
        ev = case["evaluate"]
        transfer = ev.get("transfer", {})
        rows.append([case["case"], overrides_of(case["overrides"]),
                     f"{case['steps']:,}", num(case["train_tokens_per_second"], 0),
                     num(ev["bleu"], 1), num(ev.get("code_gain"), 2),
                     num(ev["samples"]["clean_rate"]), num(ev["samples"]["judge_ppl_ratio"], 2),
                     per_label(ev.get("mode_accuracy")), num(transfer.get("accuracy")),
                     num(transfer.get("bleu_to_input"), 1)])
    return header, rows


def sample_settings(key: str, name: str) -> Callable[[Record], Table]:
    """The first case's samples under each setting of `key` (redraws, code_scale)."""
    def table(sweep: Record) -> Table:
        settings = sweep["cases"][0][key]
        labels = labels_of(next(iter(settings.values()))["modes"])
        header = [name, f"in their mode ({labels})", "clean", "judge ppl ratio",
                  "distinct-2", "Self-BLEU"]
        rows = [[setting[1:], " / ".join(num(m["accuracy"]) for _, m in sorted(s["modes"].items())),
                 num(s["clean"]), num(s["ppl_ratio"], 2), num(s["distinct_2"]),
                 num(s["self_bleu"], 1)] for setting, s in settings.items()]
        return header, rows
    return table


def transfer_strengths(sweep: Record) -> Table:
    """The first case's transfers at each fixed strength k and under the search."""
    moves = sweep["cases"][0]["transfer"]
    header = ["strength", "in target", "BLEU to input", "gmean", "clean"]
    rows = [[("k " + name[1:]) if name.startswith("k") else f"**{name}** (the default)",
             num(t["accuracy"]), num(t["bleu_to_input"], 1), num(t["gmean"], 1),
             num(t["clean"])] for name, t in moves.items()]
    return header, rows


def decodings(sweep: Record) -> Table:
    """The first case's samples and transfers under each decoding setting."""
    settings = sweep["cases"][0]["decoding"]
    labels = labels_of(settings[0]["samples"]["modes"])
    header = ["decoding", "clean", "judge ppl ratio", f"in their mode ({labels})",
              "distinct-2", "Self-BLEU", "distinct lines", "transfer k 1 in target"]
    rows = [[" ".join(k if v is True else f"{k} {v}" for k, v in s["decoding"].items()),
             num(s["samples"]["clean"]), num(s["samples"]["ppl_ratio"], 2),
             " / ".join(num(m["accuracy"]) for _, m in sorted(s["samples"]["modes"].items())),
             num(s["samples"]["distinct_2"]), num(s["samples"]["self_bleu"], 1),
             num(s["samples"]["unique"]), num(s["transfer"]["k1.0"]["accuracy"])]
            for s in settings]
    return header, rows


def story_runs(result: Record) -> Table:
    """evaluate_stories() of each way one story run was scored."""
    runs = result["runs"]
    first = next(iter(runs.values()))
    labels = labels_of(first.get("per_mode"))
    header = ["scored as", "story BLEU", "sentences per story", "clean", "judge ppl ratio",
              "Self-BLEU (real)", "coherent (relative to real)", "pronoun clashes (real)"]
    if labels:
        header.append(f"in their mode ({labels})")
    rows = []
    for name, run in runs.items():
        samples, coherence = run["samples"], run["coherence"]
        row = [name, num(run["bleu"], 1), num(samples["sentences_per_story"], 2),
               num(samples["clean_rate"]), num(samples["judge_ppl_ratio"], 2),
               f"{num(samples['self_bleu'], 1)} ({num(run.get('real_self_bleu'), 1)})",
               f"{num(coherence['sample_rate'])} ({num(coherence['relative'], 2)})",
               f"{num(samples.get('pronoun_clashes'))} ({num(run.get('real_pronoun_clashes'))})"]
        if labels:
            row.append(" / ".join(num(m["accuracy"]) for _, m in sorted(run["per_mode"].items())))
        rows.append(row)
    return header, rows


def story_level_cases(result: Record) -> Table:
    """evaluate_stories() of each story-level variant over one sentence model."""
    header = ["case", "overrides", "story BLEU", "clean", "judge ppl ratio", "Self-BLEU",
              "coherent (relative to real)"]
    rows = [[name, " ".join(f"`{o}`" for o in case["overrides"]) or "default",
             num(case["bleu"], 1), num(case["samples"]["clean_rate"]),
             num(case["samples"]["judge_ppl_ratio"], 2), num(case["samples"]["self_bleu"], 1),
             f"{num(case['coherence']['sample_rate'])} ({num(case['coherence']['relative'], 2)})"]
            for name, case in result["cases"].items()]
    return header, rows


def train_speed(result: Record) -> Table:
    header = ["case", "config", "ms per step", "tokens/s"]
    configs = result["configs"]
    rows = [[r["case"], configs.get(r["case"], "a language model of the same parts"),
             num(r["step_ms"], 1), num(r["tokens_per_second"], 0)] for r in result["results"]]
    return header, rows


def generation_speed(result: Record) -> Table:
    header = ["decoder", "state kept as", "batch", "tokens/s"]
    rows = [[r["decoder"], r["mode"], str(r["batch"]), num(r["tokens_per_s"], 0)]
            for r in result["results"]]
    return header, rows


def ddp_speed(result: Record) -> Table:
    header = ["processes", "tokens/s"]
    rows = [[name, num(value, 0)] for name, value in result["tokens_per_second"].items()]
    return header, rows


def streaming(result: Record) -> Table:
    header = ["corpus read", "training s", "set-up and after s", "peak RSS MiB", "tokens/s"]
    rows = [[r["mode"], num(r["training_seconds"], 1), num(r["set_up_and_after_seconds"], 1),
             num(r["peak_rss_mib"], 0), num(r["train_tokens_per_second"], 0)]
            for r in result["rows"]]
    return header, rows


def pretrained_encoder(result: Record) -> Table:
    encoders = [k for k in ("gru", "minilm_frozen", "minilm_fine_tuned") if k in result]
    header = ["encoder", "labels", "steps", "held-out BLEU", "samples clean",
              "samples in their mode", "transfer in target", "transfer BLEU to input"]
    rows = []
    for encoder in encoders:
        for labels, run in result[encoder].items():
            if not labels.startswith(("labelled", "unlabelled")):
                continue
            transfer = run.get("transfer", {})
            rows.append([encoder, labels, f"{run['steps']:,}", num(run["bleu"], 1),
                         num(run["samples"]["clean_rate"]), per_label(run.get("mode_accuracy")),
                         num(transfer.get("accuracy")), num(transfer.get("bleu_to_input"), 1)])
    return header, rows


def encoder_cost(result: Record) -> Table:
    speed = result["speed"]["train_units_per_second"]
    header = ["encoder", "training units/s"]
    return header, [[name, num(value, 1)] for name, value in speed.items()]


def encoder_memory(result: Record) -> Table:
    header = ["encoder", "peak RSS MiB"]
    return header, [[name, num(value, 0)] for name, value in result["peak_rss_mib"].items()]


def auto_settings(result: Record) -> Table:
    """What `auto` chose on each corpus, and the share of word tokens kept whole at each
    vocabulary size the rule tries."""
    sizes = result["rule"]["vocab_sizes"]
    header = ["corpus", "training units", *[f"whole words at {size:,}" for size in sizes],
              "vocab_size", "max_length", "batch_size", "lr"]
    rows = []
    for name, corpus in result["corpora"].items():
        shares = corpus["whole_word_share_by_size"]
        chosen = corpus["chosen"]
        rows.append([name, f"{corpus['units']:,}", *[num(shares[str(size)]) for size in sizes],
                     f"{chosen['tokenizer.vocab_size']:,}", str(chosen["data.max_length"]),
                     str(chosen["train.batch_size"]), str(chosen["train.lr"])])
    return header, rows


def lm_decoding(result: Record) -> Table:
    """Each decoding setting of benchmarks/lm_decoding.py on a sentence corpus."""
    header = ["setting", "samples LM-fluent", "LM ppl ratio", "clean", "n-gram ppl ratio",
              "in their mode", "copy rate", "s per 100 samples (threads)", "transfers in target",
              "transfer BLEU to input", "transfers LM-fluent", "midpoints LM-fluent"]
    rows = []
    for name, figures in result["settings"].items():
        samples, transfers = figures["samples"], figures.get("transfers", {})
        rows.append([name, num(samples["lm_fluent"], 2), num(samples["lm_ppl_ratio"], 2),
                     num(samples["clean_rate"], 2), num(samples["judge_ppl_ratio"], 2),
                     num(samples["in_mode"], 2), num(samples["copy_rate"], 2),
                     f"{num(samples['seconds_per_100'], 1)} ({figures['threads']})",
                     num(transfers.get("accuracy"), 2),
                     num(transfers.get("bleu_to_input"), 1), num(transfers.get("lm_fluent"), 2),
                     num(figures["midpoints"]["lm_fluent"], 2)])
    return header, rows


def lm_story_decoding(result: Record) -> Table:
    """Each decoding setting of benchmarks/lm_decoding.py on stories: their sentences."""
    header = ["setting", "sentences LM-fluent", "LM ppl ratio", "clean", "n-gram ppl ratio",
              "sentence copy rate", "sentences per story", "s per 100 stories (threads)"]
    rows = []
    for name, figures in result["settings"].items():
        sentences = figures["sentences"]
        rows.append([name, num(sentences["lm_fluent"], 2), num(sentences["lm_ppl_ratio"], 2),
                     num(sentences["clean_rate"], 2), num(sentences["judge_ppl_ratio"], 2),
                     num(sentences["copy_rate"], 2), num(figures["sentences_per_story"], 1),
                     f"{num(figures['seconds_per_100_stories'], 1)} ({figures['threads']})"])
    return header, rows


def pretrained_decoders(result: Record) -> Table:
    """Each decoder of benchmarks/pretrained_decoder.py on Yelp, at the end of its run."""
    header = ["decoder", "steps (quiet s, threads)", "held-out BLEU", "hand-written BLEU",
              "hand-written MiniLM similarity", "samples LM-fluent", "n-gram ppl ratio",
              "in their mode", "copy rate", "transfers in target", "transfer BLEU to input",
              "train tokens/s", "peak RSS MiB"]
    rows = []
    for name, run in result["yelp"].items():
        samples, written, transfer = run["samples"], run["handwritten"], run["transfer"]
        in_mode = "/".join(num(value, 2) for value in run["mode_accuracy"].values())
        rows.append([name, f"{run['steps']:,} ({run['max_time']:,.0f}, {run['threads']})",
                     num(run["bleu"], 1), num(written["bleu"], 1),
                     num(written["minilm_similarity"], 2), num(samples["lm_fluent"], 2),
                     num(samples["judge_ppl_ratio"], 2), in_mode, num(samples["copy_rate"], 2),
                     num(transfer["praise_rate"], 2), num(transfer["bleu_to_inputs"], 1),
                     f"{run['train_tokens_per_second']:,.0f}", f"{run['peak_rss_mib']:,}"])
    return header, rows


def pretrained_decoder_curves(result: Record) -> Table:
    """Held-out and hand-written BLEU of each decoder against its training time."""
    header = ["decoder", "step", "quiet seconds (2 threads)", "held-out BLEU",
              "hand-written BLEU"]
    rows = [[name, f"{point['step']:,}", num(point["quiet_seconds"], 0), num(point["bleu"], 1),
             num(point["handwritten_bleu"], 1)]
            for name, run in result["yelp"].items() for point in run["curve"]]
    return header, rows


def pretrained_decoder_cures(result: Record) -> Table:
    """smollm2_lora with each cure for a decoder that ignores z: its last validation."""
    header = ["cure", "arguments", "steps", "code_gain", "mode_agreement", "mmd", "recon",
              "accuracy"]
    rows = [[name, overrides_of(run["arguments"]), f"{run['steps']:,}",
             num(run["final"]["code_gain"], 2), num(run["final"]["mode_agreement"], 2),
             num(run["final"]["mmd"], 3), num(run["final"]["recon"], 2),
             num(run["final"]["accuracy"], 2)] for name, run in result["cures"].items()]
    return header, rows


# ---- what is current -----------------------------------------------------------------------

LATENT = "latent_quality.json"
YELP = "yelp-600-2threads-defaults"
STORIES_CMD = "python benchmarks/stories.py --corpus {corpus} --score RUN --out {out}"

LM_RUNS = ("The runs were trained with `train.py` on the data paths and the label options, "
           "to the steps that quiet 600-s runs on 2 threads made "
           "([Sentences on Yelp](#sentences-on-yelp): 4,909; [Stories on ROCStories]"
           "(#stories-on-rocstories): 6,643 sentence and 3,000 story steps, with "
           "`configs/stories.yaml` and `data.mask_names=true`) as `train.max_steps`, "
           "`train.max_time=null`, on a shared machine. Timings on 2 threads were taken on a "
           "quiet machine; those on 1 thread beside other work, and compare only with each "
           "other. ")

PRETRAINED_RUNS = (
    "Yelp (10% labels, 2 modes), the README's defaults, each SmolLM2 regime from "
    "`configs/smollm2_decoder.yaml`. Each decoder trained for the steps a quiet run of the "
    "named seconds on 2 threads makes (measured over 90 s each), as `train.max_steps`, on 1 "
    "thread beside one other run (smollm2_full: 600 s itself, on 2 quiet threads); samples are "
    "the decoder's alone (`generation.lm=null`). ")

SECTIONS = (
    Section("A pretrained decoder", "pretrained_decoder.json",
            "python benchmarks/pretrained_decoder.py --corpus yelp --decoders NAME --time T "
            "--steps N --threads 1 --samples 200 --held-out 500 --curve-points 6 --add",
            PRETRAINED_RUNS + "Transfers: 500 dev complaints to praise, greedy; hand-written: "
            "50 sentences in no corpus, greedy reconstruction.", pretrained_decoders),
    Section("A pretrained decoder against training time", "pretrained_decoder.json",
            "python benchmarks/pretrained_decoder.py (as above)",
            PRETRAINED_RUNS + "Each point: the weights train.py kept at a validation (the best "
            "so far), reconstructing 200 held-out and the 50 hand-written sentences greedily.",
            pretrained_decoder_curves),
    Section("Cures for a pretrained decoder that ignores z", "pretrained_decoder.json",
            "python benchmarks/pretrained_decoder.py --cures NAME ... --steps 200 --threads 1 "
            "--curve-points 2 --add",
            "`configs/smollm2_decoder.yaml` (LoRA) on Yelp (10% labels) for 200 steps (about "
            "290 s on 2 quiet threads), on 1 thread beside one other run, each with one known "
            "cure. code_gain: nats per SmolLM2 token that the unit's own code saves over another "
            "unit's (near 0: z is ignored); mode_agreement: held-out labelled codes in their "
            "label's mode.", pretrained_decoder_cures),
    Section("A pretrained LM in decoding", "lm_decoding_yelp.json",
            "python benchmarks/lm_decoding.py --corpus yelp --run RUN --fusion-run LM_RUN",
            LM_RUNS + "Yelp (10% labels): each setting decodes at the run's own defaults "
            "(temperature 0.7, top-p 0.9); SmolLM2 reranks K candidates per code (weight 0.5 "
            "unless named) or fuses into every step of a decoder trained on its pieces "
            "(`tokenizer.type=lm`). LM-fluent: the share of lines at or below the real held-out "
            "lines' 90th percentile of SmolLM2 perplexity (real text: 0.90); an LM judge "
            "flatters text its own LM chose, so the n-gram judge of the training split stands "
            "beside it. Seconds per 100 samples on the threads each setting records.",
            lm_decoding),
    Section("A pretrained LM in story decoding", "lm_decoding_roc.json",
            "python benchmarks/lm_decoding.py --corpus roc --run RUN --n 10",
            LM_RUNS + "ROCStories as paths of sentence codes: the sentences of 10 sampled "
            "stories per mode, their sentences reranked as above.", lm_story_decoding),
    Section("Sentences on Yelp", LATENT, "", "Held-out evaluate() on Yelp after 600 s on 2 "
            "threads, with what a user gives: the data paths, the label field and 10% of the "
            "labels (`data.labeled_fraction=0.1`); every other setting the default, the "
            "corpus-dependent ones `auto` (8,000 pieces, 2 modes, batch 256).",
            sentence_cases, YELP),
    Section("Validation subset", LATENT, "", "The same run with `train.eval_batches=null`, "
            "the default before: each validation read all 63,483 dev sentences (about 110 s "
            "of the 600), so the run made fewer steps.",
            sentence_cases, "yelp-600-2threads-defaults-wholevalid"),
    Section("Batch size", LATENT, "", "Before `auto`: the default batch of 64 (then 128 on "
            "Yelp by the benchmark's own overrides) against 256, 600 s on 2 threads each; "
            "`auto` now picks 256 for a corpus of 100k+ units.",
            sentence_cases, "yelp-600-2threads-batch256"),
    Section("Sentences on Yelp, twice the time", LATENT, "", "The default config given "
            "1,200 s: how far reconstruction goes with more steps.",
            sentence_cases, "yelp-1200-2threads-default"),
    Section("Sentences on the demo corpus", LATENT, "", "The default config on the embedded "
            "corpus with its sentence labels, 420 s on one thread each, side by side.",
            sentence_cases, "demo-420-1thread-lr2.8e-3"),
    Section("Sample redraws", LATENT, "", "Samples of the Yelp default run drawn again while "
            "the model reads them as another mode (`generation.sample_redraws`), 200 a mode.",
            sample_settings("redraws", "redraws"), YELP),
    Section("Code scale", LATENT, "", "Samples of the Yelp default run drawn at a fraction of "
            "their mode's spread (`sample --code-scale`), 200 a mode.",
            sample_settings("code_scale", "code scale"), YELP),
    Section("Transfer strength", LATENT, "", "Held-out Yelp sentences moved to the other "
            "sentiment, greedy: one strength k for every text, or the search up to "
            "`generation.transfer_strength` in `generation.transfer_steps` steps.",
            transfer_strengths, YELP),
    Section("Decoding", LATENT, "", "Samples (200 a mode) and greedy transfers of one "
            "demo-corpus run (420 s, mode input off) under each decoding setting.",
            decodings, "demo-420-2threads-decoding"),
    Section("Noise", LATENT, "", "`model.z_noise` 0.5 (the default) against 0.3 on Yelp, "
            "600 s on one thread each, side by side.", sentence_cases,
            "yelp-600-1thread-z0.3-redraws"),
    Section("Code size", LATENT, "", "A 64-number code against the 32 that was then the "
            "default (`default` here), on Yelp, 600 s on one thread each, side by side.",
            sentence_cases, "yelp-600-1thread-latent64"),
    Section("Label matching", LATENT, "", "`regularizer.label_mmd_weight` 10 (as "
            "`configs/demo.yaml`) against the default of its day (0, a 32-number code) on the "
            "demo corpus, every unit labelled, 420 s on one thread each, side by side.",
            sentence_cases, "demo-420-1thread-label-mmd"),
    Section("Mode input", LATENT, "", "`model.mode_input` on against the default of its day "
            "(off, `default` here) on the demo corpus, 420 s on one thread each, side by "
            "side.", sentence_cases, "demo-420-1thread-sentence-labels"),
    Section("Covariance match", LATENT, "", "`regularizer.spread_weight` 1 (with a memory of "
            "640 codes) beside more noise on z, both at a 64-number code, on the demo corpus, "
            "420 s on one thread each, side by side.", sentence_cases,
            "demo-420-1thread-spread"),
    Section("Tokenizer", LATENT, "", "SentencePiece's unigram model against BPE of 2,000 "
            "pieces on the demo corpus, 420 s on one thread each, side by side.",
            sentence_cases, "demo-420-1thread-tokenizer"),
    Section("Adaptive softmax", LATENT, "", "The adaptive softmax (the default, cutoff 2,000) "
            "against a full softmax over Yelp's 8,000 pieces, 600 s on one thread each, side "
            "by side.", sentence_cases, "yelp-600-1thread-output-layer"),
    Section("Precision", LATENT, "", "bf16 autocast (`train.precision=bf16`) against fp32, "
            "the default of its day (`default` here), on Yelp, 600 s on one thread each, side "
            "by side.", sentence_cases,
            "yelp-600-1thread-bf16"),
    Section("Auto settings", "auto_settings.json", "python benchmarks/auto_settings.py",
            "What the `auto` keys resolve to on each corpus's training split (tokenizer "
            "training and counting, no model): the smallest vocabulary at which 95% of word "
            "tokens stay whole pieces, the 99.5th percentile of unit lengths, the batch and "
            "learning rate by corpus size.", auto_settings),
    Section("Stories on the demo corpus", "stories_demo_pronouns.json",
            STORIES_CMD.format(corpus="demo", out="stories_demo_pronouns"),
            "A `make demo` story run scored three ways, 200 stories: as it samples, with its "
            "sentences as decoded, and without story redraws.", story_runs),
    Section("Stories on ROCStories", "stories_roc_defaults.json",
            "python benchmarks/stories.py --corpus roc --only paths --threads 2 "
            "--out stories_roc_defaults",
            "A ROCStories paths run, 540 + 60 s on 2 threads: `configs/stories.yaml` with the "
            "data paths and names as roles (`data.mask_names=true`, the one override), every "
            "other setting the default (`auto` chose 16,000 pieces), scored the same three "
            "ways.", story_runs),
    Section("The story level's settings", "story_level_roc.json",
            "python benchmarks/story_level.py --run RUN", "Each story-level variant trained "
            "60 s over the same ROCStories sentence model.", story_level_cases),
    Section("Pretrained encoder", "pretrained_encoder.json",
            "python benchmarks/pretrained_encoder.py", "The GRU encoder against MiniLM, "
            "frozen and fine-tuned, on Yelp with 1% and 10% of the labels, 600 s each, with the "
            "overrides this benchmark still sets (8,000 pieces, 2 modes, batch 128, "
            "`data.max_length=32`), not `auto`'s choices.",
            pretrained_encoder),
    Section("Pretrained encoder speed", "pretrained_encoder_speed.json",
            "python benchmarks/pretrained_encoder.py --speed-only",
            "Training units per second of each encoder, one thread.", encoder_cost),
    Section("Pretrained encoder memory", "pretrained_encoder_memory.json",
            "python benchmarks/pretrained_encoder.py --memory-only", "Peak resident memory of "
            "`train.py` training 50 steps with each encoder.", encoder_memory),
    Section("Training speed", "train_speed_d64.json",
            "python benchmarks/train_speed.py --out train_speed_d64", "One training step of "
            "each config, batch 64, against a language model of the same parts.", train_speed),
    Section("Generation speed", "generation_speed.json", "python benchmarks/generation_speed.py",
            "Decoding 64 new tokens: the Transformer with and without its key/value cache, "
            "and the GRU.", generation_speed),
    Section("Data-parallel speed", "ddp_speed.json", "python benchmarks/ddp_speed.py",
            "One process on 2 threads, one on 1 thread, and two torchrun processes of 1 "
            "thread each.", ddp_speed),
    Section("Streaming", "streaming.json",
            "python benchmarks/streaming.py --copies 8 --steps 300 --threads 1",
            "A corpus of about a million units read whole or streamed.", streaming),
)

SUPERSEDED = frozenset({
    "latent_quality_demo_code_scale.json", "modes.json",
    "reconstruction.json", "stories_demo.json", "stories_demo_redraws.json",
    "stories_demo_scored.json", "stories_roc.json", "stories_roc_bpe4000.json",
    "stories_roc_bpe8000.json", "stories_roc_masked.json", "stories_roc_paths.json",
    "stories_roc_paths_adaptive.json", "stories_roc_paths_bpe8000.json",
    "stories_roc_paths_latent64.json", "stories_roc_paths_names.json",
    "stories_roc_paths_today.json", "stories_roc_paths_unmasked.json",
    "stories_roc_pronouns_before.json", "stories_roc_pronouns_after.json",
    "stories_roc_redraws.json", "train_speed.json",
    "train_speed_1thread.json",
})


# ---- provenance ----------------------------------------------------------------------------

@cache
def load(file: str) -> Record:
    return json.loads((RESULTS / file).read_text(encoding="utf-8"))


def record(section: Section) -> Record:
    result = load(section.file)
    return result["sweeps"][section.sweep] if section.sweep else result


def machine(result: Record) -> str:
    """What the record says of its machine: processor, cores, torch."""
    about = result.get("machine")
    about = about if isinstance(about, dict) else result
    parts = [about.get("machine"), f"{about['cpus']} CPUs" if "cpus" in about else None,
             f"torch {about['torch']}" if "torch" in about else None]
    if not any(parts):
        parts = ["not recorded in the JSON"]
    threads = result.get("threads")
    if threads is not None:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    return ", ".join(p for p in parts if p)


def measured_on(section: Section) -> str:
    """The day the record says it was measured; records made before they said so: the date
    of the last commit that changed it (a sweep: its name's count)."""
    result = record(section)
    about = result.get("machine")
    date = about.get("date") if isinstance(about, dict) else result.get("date")
    if date:
        return f"{date} (recorded)"
    path = (RESULTS / section.file).relative_to(ROOT).as_posix()
    pickaxe = [f"-S\"{section.sweep}\""] if section.sweep else []
    out = subprocess.run(["git", "log", "-1", "--format=%cs", *pickaxe, "--", path],
                         cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    return f"{out} (git date)" if out else "not yet committed"


# ---- the page ------------------------------------------------------------------------------

def markdown_table(table: Table) -> Iterable[str]:
    header, rows = table
    yield "| " + " | ".join(header) + " |"
    yield "|" + "---|" * len(header)
    for row in rows:
        yield "| " + " | ".join(row) + " |"


def render() -> str:
    """The whole of docs/results.md, from the JSON files alone."""
    placed = {s.file for s in SECTIONS} | SUPERSEDED
    unplaced = sorted(p.name for p in RESULTS.glob("*.json") if p.name not in placed)
    if unplaced:
        raise SystemExit(f"place {', '.join(unplaced)} in SECTIONS or SUPERSEDED "
                         "of benchmarks/write_results.py")
    lines = ["# Results", "",
             "<!-- Written by `python benchmarks/write_results.py` from "
             "benchmarks/results/*.json; do not edit. -->", "",
             "The current figures, each table from one JSON file of `benchmarks/results/`. "
             "Earlier measurements, and the notes on each round, are in git history. "
             "Metric names are those of `evaluate` ([metrics.md](metrics.md)). "
             "Speed figures are ratios within one run of a script; the machine was often "
             "busy with other work.", ""]
    lines += [f"- [{s.title}](#{anchor(s.title)})" for s in SECTIONS]
    for section in SECTIONS:
        result = record(section)
        source = f"`{section.file}`" + (f", sweep `{section.sweep}`" if section.sweep else "")
        lines += ["", f"## {section.title}", "", section.what, "",
                  f"- command: `{section.command or result['command']}`",
                  f"- measured on: {measured_on(section)}, in {source}",
                  f"- machine: {machine(result)}", ""]
        lines += markdown_table(section.table(result))
    return "\n".join(lines) + "\n"


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if docs/results.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        sys.exit(0 if current == text else 1)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
