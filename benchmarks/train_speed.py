"""Training speed: a WAE step against a plain language model step of the same sizes, the
regularisers' share of the step, and the Transformer's model FLOPs utilisation (MFU).

    python benchmarks/train_speed.py [--threads 2] [--steps 10] [--warmup 2]

Batches of `--batch-size` units come from the embedded corpus (data/stories.jsonl) split into
units as configs/default.yaml splits it, tokenised with a SentencePiece model trained here and
length-bucketed as training buckets them; every model runs the same batches in the same order.
WAE steps run through `Trainer.train_step` (forward, backward, clipping, AdamW, the
regulariser's step hooks such as the WAE-GAN discriminator update). The plain LMs are the
configs' own decoders (`textwae.models.decoders`) given a code of no dimensions, with no
encoder or latent: the GRU decoder is then a GRU LM (its initial state a learned bias), the
Transformer decoder its GPT-2 `transformers.GPT2LMHeadModel` (z_injection=embedding: a learned
bias added to each token embedding, no key/value prefix). They take the same kind of step:
AdamW with the same settings, clipping, cross-entropy on the same target tokens.

The machine is shared, so timings are interleaved: every round times each case once, on the
round's batch, starting at a different case each round, and figures are medians over rounds;
a ratio is the median of the per-round ratios (the same batch on both sides).

Model FLOPs of a step, the usual count (PaLM appendix B, nanoGPT's estimate_mfu): every
weight of a linear map applied at each position costs 6 FLOPs per position (2 forward, 4
backward), and attention costs 12 * layers * width * context per position (QK^T and AV over
the whole context, causal masking not discounted). Embedding lookups count nothing; the tied
output layer counts as a matmul at the target positions, the only ones it runs at; linear maps
applied once per unit (latent head, z projections, discriminator) cost 6 FLOPs per weight per
unit. Positions are the padded (B, T) grid the other matmuls compute. MFU = model FLOPs /
step seconds / peak, the peak being the better of two (2048 x 2048) @ (2048 x 2048) fp32
matmuls timed with the same threads just before and two just after the step (MFU*: against
the best matmul of the whole run). torch's FlopCounterMode counts one step as a check of the
formula. Extra rows (`--widths`) widen the Transformer config and
its GPT-2 on whole stories cut to 64 tokens, to show how MFU grows with the matmuls' size.

The default GRU WAE also runs beside the defaults before issue 9 (`lib.baseline`: unigram
tokenizer, no z noise, no mode input) over the same sentences, each side with its own
tokenizer; their step time ratio is the ratio of sentences per second (goal: the default keeps
at least 90%). Tokens per second do not compare across tokenizers: a BPE token is a whole word.

Where a goal is missed (a WAE step over 2x its LM's, or Transformer MFU under 40%), the WAE step
and its LM's are profiled with torch.profiler: top operators by self CPU time. Writes
results/train_speed.json (`--out`).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from lib.baseline import BEFORE_ISSUE_9
from lib.paths import CONFIGS, DEMO_CORPUS, ROOT
from lib.results import add_out_argument, machine, write_results
from lib.timing import PEAK_SIZE, matmul_peak, median_ratio, thread_scaling
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers.pytorch_utils import Conv1D

from textwae.config.loading import load_config
from textwae.config.schema import Config, ModelConfig
from textwae.data.splits import load_splits
from textwae.models.autoencoder import TextWAE
from textwae.models.decoders import DECODERS, TransformerDecoder
from textwae.objectives.codes import LatentOutput
from textwae.text.batching import Batch, BucketBatchSampler, TokenizedTexts, chunks
from textwae.text.token_cache import sequence_lengths, tokenize_texts
from textwae.text.tokenizers import Tokenizer
from textwae.training.callbacks import RegularizerHook
from textwae.training.trainer import Trainer, sampled_batches

GRU_CONFIGS = {"mmd": "default.yaml", "gan": "wae_gan.yaml", "kl": "vae_kl.yaml"}
TRANSFORMER_CONFIG = "transformer_mmd.yaml"
LONG_LENGTH = 64  # units of the scaling rows: cut to exactly this many tokens, no padding


# -- FLOPs -------------------------------------------------------------------------------------


def matmul_weights(*modules: nn.Module | None) -> int:
    """Weights of the linear maps in `modules` (nn.Linear, and GPT-2's Conv1D)."""
    return sum(m.weight.numel() for module in modules if module is not None
               for m in module.modules() if isinstance(m, nn.Linear | Conv1D))


def stack_flops(per_position: int, layers: int, width: int, positions: int,
                context: int) -> float:
    """Training FLOPs of a transformer stack: 6 per weight and position, plus attention."""
    return 6 * per_position * positions + 12 * layers * width * context * positions


def decoder_flops(decoder: TransformerDecoder, batch: Batch) -> float:
    """A Transformer decoder on (B, T-1) after its z key/value slot, if it has one, its output
    layer at the target positions only (every weight of an adaptive one counted there), and its
    z projections once per unit (none in a plain LM's)."""
    B, T = batch.ids.shape  # batch, time
    context = T - 1 + (decoder.memory is not None)  # the z key/value slot before the tokens
    targets = int(batch.mask[:, 1:].sum())
    return (stack_flops(matmul_weights(decoder.lm.base_model), decoder.layers,
                        decoder.lm.config.hidden_size, B * (T - 1), context)
            + 6 * matmul_weights(decoder.head) * targets
            + 6 * matmul_weights(decoder.memory, decoder.z_to_embedding) * B)


def wae_flops(model: TextWAE, batch: Batch) -> float:
    """A Transformer WAE step: the encoder on (B, T), the decoder, and the latent head and the
    regulariser once per unit."""
    B, T = batch.ids.shape  # batch, time
    cfg = model.config.model
    return (stack_flops(matmul_weights(model.encoder), cfg.transformer_layers,
                        cfg.transformer_dim, B * T, T)
            + decoder_flops(model.decoder, batch)
            + 6 * matmul_weights(model.latent, model.regularizer) * B)


def counted_flops(step: Callable[[Batch], Any], batch: Batch) -> float:
    """FLOPs torch's FlopCounterMode counts in one step (matmuls and attention)."""
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return float(counter.get_total_flops())


# -- cases and interleaved timing ------------------------------------------------------------


@dataclass
class Case:
    name: str
    step: Callable[[Batch], Any]
    batches: list[Batch]
    flops: Callable[[Batch], float] | None = None
    repeat: int = 1  # calls per timing (tiny cases), their mean kept
    seconds: list[float] = field(default_factory=list)  # one per timed round
    tokens: list[int] = field(default_factory=list)  # real tokens of each timed round's batch
    model_flops: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)  # matmul FLOP/s next to each timed step

    def batch(self, round_: int) -> Batch:
        return self.batches[round_ % len(self.batches)]

    def run(self, round_: int, timed: bool) -> None:
        """Time one step (the mean of `repeat`); a case with FLOPs also times the peak matmul
        just before and just after it, so that its MFU compares like with like on a machine
        whose load changes from second to second."""
        batch = self.batch(round_)
        before = matmul_peak(2) if self.flops is not None else 0.0
        start = time.perf_counter()
        for _ in range(self.repeat):
            self.step(batch)
        seconds = (time.perf_counter() - start) / self.repeat
        if not timed:
            return
        self.seconds.append(seconds)
        self.tokens.append(int(batch.lengths.sum()))
        if self.flops is not None:
            self.model_flops.append(self.flops(batch))
            self.peaks.append(max(before, matmul_peak(2)))


def interleave(cases: list[Case], warmup: int, steps: int) -> list[float]:
    """Time every case once per round, rotating the order; return each timed round's peak."""
    peaks = []
    for round_ in range(warmup + steps):
        timed = round_ >= warmup
        shift = round_ % len(cases)
        for case in cases[shift:] + cases[:shift]:
            case.run(round_, timed)
        peak = matmul_peak()
        if timed:
            peaks.append(peak)
        print(f"round {round_ + 1}/{warmup + steps}{'' if timed else ' (warm-up)'}: "
              f"matmul {peak / 1e9:.0f} GFLOP/s", flush=True)
    return peaks


def summary(case: Case, counted: float, peak: float) -> dict[str, Any]:
    """A case's row of the results: medians over the timed rounds."""
    row = {"case": case.name, "step_ms": 1e3 * statistics.median(case.seconds),
           "tokens_per_step": statistics.median(case.tokens),
           "tokens_per_second": statistics.median(
               t / s for t, s in zip(case.tokens, case.seconds, strict=True)),
           "step_ms_per_round": [round(1e3 * s, 2) for s in case.seconds],
           "counted_gflop_first_batch": counted / 1e9}
    if case.flops is not None:
        row["model_gflop_per_step"] = statistics.median(case.model_flops) / 1e9
        row["formula_gflop_first_batch"] = case.flops(case.batch(0)) / 1e9
        row["mfu"] = statistics.median(  # against the matmul timed next to each step
            f / s / p for f, s, p in zip(case.model_flops, case.seconds, case.peaks, strict=True))
        row["mfu_vs_run_peak"] = statistics.median(
            f / s / peak for f, s in zip(case.model_flops, case.seconds, strict=True))
        row["adjacent_peak_gflops_per_round"] = [round(p / 1e9, 1) for p in case.peaks]
    return row


# -- building the cases ------------------------------------------------------------------------


@dataclass
class Corpus:
    tokenizer: Tokenizer
    train: TokenizedTexts  # the training units
    valid: TokenizedTexts
    batches: list[Batch]  # length-bucketed, as training makes them
    long_batches: list[Batch]  # whole stories cut to exactly LONG_LENGTH tokens: no padding


def corpus(config: Config, batch_size: int, count: int) -> Corpus:
    """The corpus as `config.data` splits it, a tokenizer trained on its training split, and
    `count` full batches of each kind (the long ones of story units, whatever the config's)."""
    train_units, valid_units = load_splits(config.data)
    tokenizer = Tokenizer.train((unit.text for unit in train_units), config.tokenizer)

    def texts(units: list, max_length: int) -> TokenizedTexts:
        return tokenize_texts([unit.text for unit in units], tokenizer, tokenizer, max_length)

    def full(data: TokenizedTexts, groups: Iterable[list[int]]) -> list[Batch]:
        return [data.batch(group) for group in itertools.islice(
            (group for group in groups if len(group) == batch_size), count)]

    train, valid = (texts(units, config.data.max_length) for units in (train_units, valid_units))
    sampler = BucketBatchSampler(sequence_lengths(train.ids), batch_size, seed=0)
    stories = texts(load_splits(dataclasses.replace(config.data, unit="story"))[0], LONG_LENGTH)
    long = [i for i, ids in enumerate(stories.ids) if len(ids) == LONG_LENGTH]
    return Corpus(tokenizer, train, valid, full(train, sampler.batches(0)),
                  full(stories, chunks(long, batch_size)))


def same_units(data: Corpus, config: Config) -> Corpus:
    """`data`'s units tokenised by a tokenizer trained as `config.tokenizer` says, batched in
    the same groups: both sides of a comparison step over the same sentences."""
    train_units, valid_units = load_splits(config.data)
    tokenizer = Tokenizer.train((unit.text for unit in train_units), config.tokenizer)
    train, valid = (tokenize_texts([unit.text for unit in units], tokenizer, tokenizer,
                                   config.data.max_length)
                    for units in (train_units, valid_units))
    return Corpus(tokenizer, train, valid,
                  [train.batch(batch.index.tolist()) for batch in data.batches], [])


def load(name: str, overrides: list[str]) -> Config:
    """The config in fp32: the plain LMs step without autocast, so the WAE does too (bf16's
    own gain is measured side by side in latent_quality.py)."""
    return load_config(CONFIGS / name, overrides=[f"data.train={DEMO_CORPUS}",
                                                  "train.precision=fp32", *overrides])


def widened(width: int) -> list[str]:
    """Overrides of the scaling rows' Transformer: `width` wide, feed-forward 4x, heads of 64."""
    return [f"model.transformer_dim={width}", f"model.transformer_ff={4 * width}",
            f"model.transformer_heads={max(width // 64, 1)}"]


def wae_case(name: str, config: Config, data: Corpus, run_dir: Path, batches: list[Batch],
             with_flops: bool = False) -> tuple[Case, Trainer]:
    """A step of `Trainer.train_step`, with the regulariser's step hooks as callbacks."""
    torch.manual_seed(0)
    model = TextWAE(config, data.tokenizer)
    hooks = [RegularizerHook(hook) for hook in model.regularizer.step_hooks(model.prior)]
    train = sampled_batches(data.train, sequence_lengths(data.train.ids), config.train)
    trainer = Trainer(model, train, data.valid, run_dir, callbacks=hooks)
    flops = (lambda batch: wae_flops(model, batch)) if with_flops else None
    return Case(name, trainer.train_step, batches, flops), trainer


def language_model(cfg: ModelConfig, vocab_size: int) -> nn.Module:
    """The config's decoder conditioned on a code of no dimensions: a plain LM."""
    parts = dataclasses.replace(cfg, latent_dim=0, z_injection="embedding")
    with warnings.catch_warnings():  # the maps from the 0-wide code have no weights to draw
        warnings.filterwarnings("ignore", "Initializing zero-element tensors is a no-op")
        return DECODERS[parts.decoder](parts, vocab_size)


def lm_case(name: str, config: Config, vocab_size: int, batches: list[Batch],
            with_flops: bool = False) -> Case:
    """One LM training step per call, as the trainer takes one: AdamW with the run's settings,
    the mean cross-entropy of the real target tokens, gradient clipping."""
    torch.manual_seed(0)
    lm, cfg = language_model(config.model, vocab_size), config.train
    optimizer = torch.optim.AdamW(lm.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lm.train()

    def step(batch: Batch) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        mask = batch.mask[:, 1:]  # (B, T-1) real targets
        predicted = lm(batch.ids[:, :-1], torch.zeros(len(batch.ids), 0))  # (B, T-1, V)
        loss = F.cross_entropy(predicted[mask], batch.ids[:, 1:][mask])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), cfg.grad_clip)
        optimizer.step()
        return loss

    flops = (lambda batch: decoder_flops(lm, batch)) if with_flops else None
    return Case(name, step, batches, flops)


def regularizer_case(name: str, trainer: Trainer, batches: list[Batch], repeat: int) -> Case:
    """The regulariser alone, on codes of the batch's shape: forward, backward to the codes,
    then its step hooks (the discriminator's own step for gan)."""
    model = trainer.model
    hooks = [callback.hook for callback in trainer.callbacks]  # the RegularizerHooks above
    latent_dim = model.config.model.latent_dim
    gaussian = model.config.model.latent == "gaussian"

    def step(batch: Batch) -> None:
        B = batch.ids.shape[0]  # the codes of this batch
        mean = torch.randn(B, latent_dim, requires_grad=True)  # (B, D)
        logvar = torch.randn(B, latent_dim, requires_grad=True) if gaussian else None
        latent = LatentOutput(z=mean, mean=mean, logvar=logvar)
        (model.config.regularizer.weight * model.regularizer(latent, model.prior)).backward()
        for hook in hooks:  # at step 0, as train_step's callbacks are (fit counts the steps)
            hook.after_step(0, latent)

    model.train()
    return Case(name, step, batches, repeat=repeat)


# -- profile -----------------------------------------------------------------------------------


GEMM_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
            "aten::_scaled_dot_product_flash_attention_for_cpu",
            "aten::_scaled_dot_product_flash_attention_for_cpu_backward"}


def profile(case: Case, rounds: Iterable[int], top: int, peak: float) -> dict[str, Any]:
    """Self CPU time per operator over some steps: the top operators, the GEMM share, and the
    rate of the GEMM kernels (FLOPs of those steps, as FlopCounterMode counts them, over the
    GEMM kernels' time) against the matmul `peak`."""
    rounds = list(rounds)
    flops = sum(counted_flops(case.step, case.batch(round_)) for round_ in rounds)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for round_ in rounds:
            case.step(case.batch(round_))
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    spans = {e.key: e.cpu_time_total for e in prof.key_averages()}
    optimizer = sum(t for key, t in spans.items() if key.startswith("Optimizer.step"))
    backward = sum(e.cpu_time_total for e in prof.events()
                   if e.name.startswith("autograd::engine::evaluate_function")
                   and e.cpu_parent is None)
    per_step = 1e-3 / len(rounds)  # microseconds over all steps -> milliseconds per step
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS)  # microseconds
    return {
        "case": case.name, "steps": len(rounds), "self_cpu_ms_per_step": total * per_step,
        "gemm_share": gemm / total, "gemm_fraction_of_peak": flops / (gemm * 1e-6) / peak,
        "backward_share": backward / total, "optimizer_step_share": optimizer / total,
        "top": [{"op": e.key, "self_ms_per_step": e.self_cpu_time_total * per_step,
                 "share": e.self_cpu_time_total / total, "calls_per_step": e.count / len(rounds)}
                for e in events[:top]],
    }


def print_profile(report: dict[str, Any]) -> None:
    print(f"\nprofile of {report['case']}: {report['self_cpu_ms_per_step']:.0f} ms self CPU a step;"
          f" GEMM/attention kernels {report['gemm_share']:.0%} of it, running at "
          f"{report['gemm_fraction_of_peak']:.0%} of the matmul peak; backward "
          f"{report['backward_share']:.0%}, optimiser step {report['optimizer_step_share']:.0%}")
    print(f"  {'operator':<58} {'ms/step':>8} {'share':>6} {'calls':>6}")
    for row in report["top"]:
        print(f"  {row['op'][:58]:<58} {row['self_ms_per_step']:>8.1f} {row['share']:>6.1%} "
              f"{row['calls_per_step']:>6.0f}")


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=10, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--widths", type=int, nargs="*", default=[512],
                        help="extra Transformer widths (ff 4x, heads width/64) on 64-token units")
    parser.add_argument("--mfu-target", type=float, default=0.4,
                        help="profile the Transformer steps when their MFU falls short of this")
    parser.add_argument("--max-ratio", type=float, default=2.0,
                        help="profile a WAE step and its LM's when the WAE takes longer than "
                        "this many LM steps")
    parser.add_argument("--profile-steps", type=int, default=3, help="steps per profile")
    parser.add_argument("--profile-top", type=int, default=15, help="operators listed")
    add_out_argument(parser, "train_speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()  # the LM runs right-padded ids without a mask,
    #   as the WAE decoder does: causality hides the padding from every real token
    load_before = os.getloadavg()

    sized = [f"train.batch_size={args.batch_size}"]
    gru = {regularizer: load(name, sized) for regularizer, name in GRU_CONFIGS.items()}
    data = corpus(gru["mmd"], args.batch_size, args.warmup + args.steps)
    batches, vocab = data.batches, data.tokenizer.vocab_size
    transformer = {"": (load(TRANSFORMER_CONFIG, sized), batches)} | {
        f"_d{width}": (load(TRANSFORMER_CONFIG, [*sized, *widened(width)]), data.long_batches)
        for width in args.widths}

    run_dir = Path(tempfile.mkdtemp(prefix="train_speed-"))  # train_step writes nothing here
    cases, trainers = [], {}
    for regularizer, config in gru.items():
        case, trainers[regularizer] = wae_case(f"gru_wae_{regularizer}", config, data,
                                               run_dir, batches)
        cases.append(case)
    before = load(GRU_CONFIGS["mmd"], [*sized, *BEFORE_ISSUE_9])
    before_data = same_units(data, before)
    cases.append(wae_case("gru_wae_before_issue9", before, before_data, run_dir,
                          before_data.batches)[0])
    cases.append(lm_case("gru_lm", gru["mmd"], vocab, batches))
    for suffix, (config, its_batches) in transformer.items():
        cases.append(wae_case(f"transformer_wae{suffix}", config, data, run_dir, its_batches,
                              with_flops=True)[0])
        cases.append(lm_case(f"gpt2_lm{suffix}", config, vocab, its_batches, with_flops=True))
    for regularizer, trainer in trainers.items():
        cases.append(regularizer_case(f"{regularizer}_alone", trainer, batches, repeat=20))
    by_name = {case.name: case for case in cases}

    whole_steps = [case for case in cases if not case.name.endswith("_alone")]
    counted = {case.name: counted_flops(case.step, case.batch(0)) for case in whole_steps}
    print(f"{len(cases)} cases, {args.warmup} warm-up + {args.steps} timed rounds, "
          f"batch {args.batch_size}, {args.threads} threads, load {load_before}", flush=True)
    scaling = thread_scaling(args.threads)
    peaks = interleave(cases, args.warmup, args.steps)
    peak = max(peaks)

    rows = [summary(case, counted[case.name], peak) for case in whole_steps]
    pairs = [("gru_wae_mmd", "gru_lm")] + [(f"transformer_wae{suffix}", f"gpt2_lm{suffix}")
                                           for suffix in transformer]
    ratios = {f"{a}/{b}": median_ratio(by_name[a].seconds, by_name[b].seconds)
              for a, b in pairs}
    flop_ratios = {f"{a}/{b}": counted[a] / counted[b] for a, b in pairs}  # the same batch
    # the same sentences, each side tokenised its own way: step time is time per sentence
    default_over_before = median_ratio(by_name["gru_wae_mmd"].seconds,
                                       by_name["gru_wae_before_issue9"].seconds)
    shares = {}
    for regularizer in gru:
        alone, step = by_name[f"{regularizer}_alone"], by_name[f"gru_wae_{regularizer}"]
        shares[regularizer] = {"alone_ms": 1e3 * statistics.median(alone.seconds),
                               "step_ms": 1e3 * statistics.median(step.seconds),
                               "share": median_ratio(alone.seconds, step.seconds)}

    print(f"\nmatmul peak ({PEAK_SIZE}^3 fp32, best of the run): {peak / 1e9:.0f} GFLOP/s "
          f"(median round {statistics.median(peaks) / 1e9:.0f})")
    print("MFU: against the matmul timed just before and after each step (median over rounds);"
          " MFU*: against the run's best matmul")
    print(f"{'case':<22} {'step ms':>8} {'tokens/s':>9} {'GFLOP':>7} {'MFU':>6} {'MFU*':>6}")
    for row in rows:
        flops = (f"{row['model_gflop_per_step']:>7.1f} {row['mfu']:>6.1%} "
                 f"{row['mfu_vs_run_peak']:>6.1%}" if "mfu" in row else "")
        print(f"{row['case']:<22} {row['step_ms']:>8.0f} {row['tokens_per_second']:>9.0f} "
              f"{flops}")
    print("\nWAE step time / plain LM step time (goal: at most 2x), and the ratio of their FLOPs"
          " (FlopCounterMode, first batch):")
    for pair, ratio in ratios.items():
        print(f"  {pair:<36} {ratio:.2f}x time  {flop_ratios[pair]:.2f}x FLOPs")
    print(f"\ndefault step time / the pre-issue-9 defaults' (unigram tokenizer, no z noise or mode"
          f" input) over the same sentences: {default_over_before:.2f}x, that is "
          f"{1 / default_over_before:.0%} of their sentences per second (goal: at least 90%)")
    print("\nregulariser alone (forward + backward + callbacks) as a share of its GRU step:")
    for regularizer, share in shares.items():
        print(f"  {regularizer:<4} {share['alone_ms']:>7.2f} ms of {share['step_ms']:>6.0f} ms"
              f"  {share['share']:.2%}")

    # where the time goes, wherever a goal is missed: a profile of the WAE step and its LM's
    mfu = {row["case"]: row["mfu"] for row in rows if "mfu" in row}
    missed = [(a, b) for a, b in pairs[:2] if ratios[f"{a}/{b}"] > args.max_ratio
              or mfu.get(a, 1.0) < args.mfu_target]
    profiles = []
    rounds = range(args.warmup, args.warmup + args.profile_steps)
    for name in (name for pair in missed for name in pair):
        profiles.append(profile(by_name[name], rounds, args.profile_top, statistics.median(peaks)))
        print_profile(profiles[-1])

    shutil.rmtree(run_dir)
    load_after = os.getloadavg()
    print(f"\nload average before {load_before}, after {load_after}")
    report = {
        "threads": args.threads, "batch_size": args.batch_size, "steps": args.steps,
        "warmup": args.warmup, "vocab_size": vocab, "long_length": LONG_LENGTH,
        **machine(), "load_average_before": load_before, "load_average_after": load_after,
        "configs": {**{f"gru_wae_{r}": f"configs/{name}" for r, name in GRU_CONFIGS.items()},
                    "gru_wae_before_issue9": f"configs/{GRU_CONFIGS['mmd']}, "
                                             f"{' '.join(BEFORE_ISSUE_9)}",
                    "transformer_wae": f"configs/{TRANSFORMER_CONFIG}",
                    **{f"transformer_wae_d{w}": f"configs/{TRANSFORMER_CONFIG}, "
                       f"{' '.join(widened(w))}, units of {LONG_LENGTH} tokens"
                       for w in args.widths}},
        "flops_formula": "6 * linear weights * positions + 12 * layers * width * context * "
                         "positions per transformer stack, + 6 * per-unit weights * B",
        "matmul_gflops_by_threads": scaling,
        "matmul_peak_gflops": peak / 1e9, "matmul_peak_gflops_per_round": [p / 1e9 for p in peaks],
        "results": rows, "wae_over_lm": ratios,
        "default_over_before_issue9_step_time": default_over_before,
        "wae_over_lm_counted_flops": flop_ratios, "regularizer_share": shares,
        "profiles": profiles,
    }
    print(f"wrote {write_results(args.out, report).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
