"""Training speed: a WAE step against a plain language model step of the same sizes, the
regularisers' share of the step, and the Transformer's model FLOPs utilisation (MFU).

    python benchmarks/train_speed.py [--threads 2] [--steps 10] [--warmup 2]

Batches of `--batch-size` units come from the embedded corpus (data/stories.jsonl) split into
units as configs/default.yaml splits it, tokenised with a SentencePiece model trained here and
length-bucketed as training buckets them; every model runs the same batches in the same order.
WAE steps run through `Trainer.train_step` (forward, backward, clipping, AdamW, callbacks such
as the WAE-GAN discriminator update). The plain LMs (a GRU LM shaped like the GRU decoder, and
the GPT-2 `transformers.GPT2LMHeadModel` of the Transformer decoder, neither with an encoder or
a latent) take the same kind of step: AdamW with the same settings, clipping, cross-entropy on
the same target tokens.

The machine is shared, so timings are interleaved: every round times each case once, on the
round's batch, starting at a different case each round, and figures are medians over rounds;
a ratio is the median of the per-round ratios (the same batch on both sides).

Model FLOPs of a step, the usual count (PaLM appendix B, nanoGPT's estimate_mfu): every
weight of a linear map applied at each position costs 6 FLOPs per position (2 forward, 4
backward), and attention costs 12 * layers * width * context per position (QK^T and AV over
the whole context, causal masking not discounted). Embedding lookups count nothing; the tied
output layer counts as a matmul; linear maps applied once per unit (latent head, z projections,
discriminator) cost 6 FLOPs per weight per unit. Positions are the padded (B, T) grid the
matmuls compute. MFU = model FLOPs / step seconds / peak, the peak being the better of two
(2048 x 2048) @ (2048 x 2048) fp32 matmuls timed with the same threads just before and two just
after the step (MFU*: against the best matmul of the whole run). torch's FlopCounterMode counts
one step as a check of the formula. Extra rows (`--widths`) widen the Transformer config and
its GPT-2 on whole stories cut to 64 tokens, to show how MFU grows with the matmuls' size.

Where a goal is missed (a WAE step over 2x its LM's, or Transformer MFU under 40%), the WAE step
and its LM's are profiled with torch.profiler: top operators by self CPU time. Writes
results/train_speed.json (`--out`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from common import ROOT, write_results
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers.pytorch_utils import Conv1D

from textwae.batching import Batch, BucketBatchSampler, TokenizedTexts, collate
from textwae.config import Config, ModelConfig, load_config
from textwae.data import load_splits
from textwae.decoders import TransformerDecoder
from textwae.latent import LatentOutput
from textwae.model import TextWAE
from textwae.tokenizer import PAD_ID, Tokenizer
from textwae.training import Trainer

CONFIGS = ROOT / "configs"
CORPUS = ROOT / "data" / "stories.jsonl"
PEAK_SIZE = 2048  # the peak matmul is (PEAK_SIZE, PEAK_SIZE) @ (PEAK_SIZE, PEAK_SIZE)
LONG_LENGTH = 64  # units of the scaling rows: cut to exactly this many tokens, no padding


# -- the plain language models and their step --------------------------------------------------


class GRULanguageModel(nn.Module):
    """The GRU decoder without z: embedding -> GRU -> projection -> tied output layer."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        self.gru = nn.GRU(cfg.embedding_dim, cfg.hidden_size, num_layers=cfg.num_layers,
                          batch_first=True, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.to_embedding = nn.Linear(cfg.hidden_size, cfg.embedding_dim)
        self.output = nn.Linear(cfg.embedding_dim, vocab_size)
        if cfg.tie_embeddings:
            self.output.weight = self.embedding.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.gru(self.dropout(self.embedding(ids)))  # (B, T, H)
        return self.output(torch.tanh(self.to_embedding(self.dropout(outputs))))  # (B, T, V)


def lm_stepper(model: nn.Module, logits: Callable[[torch.Tensor], torch.Tensor],
               config: Config) -> Callable[[Batch], torch.Tensor]:
    """One LM training step per call, as the trainer takes one: AdamW with the run's settings,
    the mean cross-entropy of the real target tokens, gradient clipping."""
    cfg = config.train
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()

    def step(batch: Batch) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        mask = batch.mask[:, 1:]  # (B, T-1) real targets
        predicted = logits(batch.ids[:, :-1])  # (B, T-1, V)
        loss = F.cross_entropy(predicted[mask], batch.ids[:, 1:][mask])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        return loss

    return step


# -- FLOPs -------------------------------------------------------------------------------------


def matmul_weights(*modules: nn.Module | None) -> int:
    """Weights of the linear maps in `modules` (nn.Linear, and GPT-2's Conv1D)."""
    return sum(m.weight.numel() for module in modules if module is not None
               for m in module.modules() if isinstance(m, nn.Linear | Conv1D))


def stack_flops(per_position: int, layers: int, width: int, positions: int,
                context: int) -> float:
    """Training FLOPs of a transformer stack: 6 per weight and position, plus attention."""
    return 6 * per_position * positions + 12 * layers * width * context * positions


def wae_flops(model: TextWAE, batch: Batch) -> float:
    """A Transformer WAE step: encoder on (B, T), decoder on (B, T-1) after the z slot."""
    B, T = batch.ids.shape  # batch, time
    cfg, decoder = model.config.model, model.decoder
    per_unit = matmul_weights(model.latent, decoder.memory, decoder.z_to_embedding,
                              model.regularizer)
    layers, width = cfg.transformer_layers, cfg.transformer_dim
    context = T - 1 + (decoder.memory is not None)  # the z key/value slot before the tokens
    return (stack_flops(matmul_weights(model.encoder), layers, width, B * T, T)
            + stack_flops(matmul_weights(decoder.lm), layers, width, B * (T - 1), context)
            + 6 * per_unit * B)


def lm_flops(lm: transformers.GPT2LMHeadModel, batch: Batch) -> float:
    B, T = batch.ids.shape  # batch, time
    cfg = lm.config
    return stack_flops(matmul_weights(lm), cfg.n_layer, cfg.n_embd, B * (T - 1), T - 1)


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


def matmul_peak(repeats: int = 3) -> float:
    """FLOP/s of the best of `repeats` square fp32 matmuls."""
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    out = torch.empty(PEAK_SIZE, PEAK_SIZE)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * PEAK_SIZE**3 / best


def thread_scaling(threads: int) -> dict[int, float]:
    """Peak matmul GFLOP/s at one thread and at `threads`, alternated; warns when `threads`
    gain little over one, a sign that other processes hold the cores: OpenMP threads then
    wait at every barrier for a thread the scheduler has parked, and steps made of many small
    operators slow down far more than the one large matmul does."""
    best = {1: 0.0, threads: 0.0}
    for _ in range(3):
        for count in best:
            torch.set_num_threads(count)
            best[count] = max(best[count], matmul_peak(2) / 1e9)
    torch.set_num_threads(threads)
    if threads > 1 and best[threads] < 1.3 * best[1]:
        print(f"warning: {threads} threads reach {best[threads]:.0f} GFLOP/s against "
              f"{best[1]:.0f} with one: the cores are shared with other work, and timings at "
              f"{threads} threads are contended (try --threads 1)", flush=True)
    return best


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


def median_ratio(a: Case, b: Case) -> float:
    return statistics.median(x / y for x, y in zip(a.seconds, b.seconds, strict=True))


# -- building the cases ------------------------------------------------------------------------


@dataclass
class Corpus:
    tokenizer: Tokenizer
    train: list[list[int]]  # token ids of the training units
    valid: list[list[int]]
    batches: list[Batch]  # length-bucketed, as training makes them
    long_batches: list[Batch]  # whole stories cut to exactly LONG_LENGTH tokens: no padding


def corpus(config: Config, batch_size: int, count: int) -> Corpus:
    """The corpus as `config.data` splits it, a tokenizer trained on its training split, and
    `count` full batches of each kind (the long ones of story units, whatever the config's)."""
    train_units, valid_units = load_splits(config.data)
    tokenizer = Tokenizer.train((unit.text for unit in train_units), config.tokenizer)
    max_length = config.data.max_length
    train = tokenizer.encode_batch([unit.text for unit in train_units], max_length)
    valid = tokenizer.encode_batch([unit.text for unit in valid_units], max_length)
    sampler = BucketBatchSampler([len(ids) for ids in train], batch_size, seed=0)
    chosen = [indices for indices in sampler.batches(0) if len(indices) == batch_size][:count]
    stories, _ = load_splits(dataclasses.replace(config.data, unit="story"))
    story_ids = tokenizer.encode_batch([unit.text for unit in stories], LONG_LENGTH)
    long = [i for i, ids in enumerate(story_ids) if len(ids) == LONG_LENGTH]
    chunks = [long[s : s + batch_size] for s in range(0, len(long) - batch_size + 1, batch_size)]
    return Corpus(
        tokenizer, train, valid,
        [collate([train[i] for i in indices], indices, PAD_ID) for indices in chosen],
        [collate([story_ids[i] for i in chunk], chunk, PAD_ID) for chunk in chunks[:count]])


def load(*names: str, overrides: Iterable[str] = ()) -> Config:
    return load_config(*(CONFIGS / name for name in names),
                       overrides=[f"data.train={CORPUS}", *overrides])


def wae_case(name: str, config: Config, data: Corpus, run_dir: Path, batches: list[Batch],
             with_flops: bool = False) -> tuple[Case, Trainer]:
    torch.manual_seed(0)
    model = TextWAE(config, data.tokenizer)
    trainer = Trainer(model, TokenizedTexts(data.train, PAD_ID),
                      TokenizedTexts(data.valid, PAD_ID), run_dir,
                      callbacks=model.regularizer.callbacks(config))
    flops = (lambda batch: wae_flops(model, batch)) if with_flops else None
    return Case(name, trainer.train_step, batches, flops), trainer


def gpt2_case(name: str, config: Config, vocab_size: int, batches: list[Batch]) -> Case:
    torch.manual_seed(0)
    # the decoder's own GPT2LMHeadModel, built from the same GPT2Config, without z
    lm = TransformerDecoder(config.model, vocab_size).lm
    step = lm_stepper(lm, lambda ids: lm(input_ids=ids, use_cache=False).logits, config)
    return Case(name, step, batches, lambda batch: lm_flops(lm, batch))


def regularizer_case(name: str, trainer: Trainer, batches: list[Batch], repeat: int) -> Case:
    """The regulariser alone, on codes of the batch's shape: forward, backward to the codes,
    then the regulariser's callbacks (the discriminator's own step for gan)."""
    model = trainer.model
    latent_dim = model.config.model.latent_dim
    gaussian = model.config.model.latent == "gaussian"

    def step(batch: Batch) -> None:
        B = batch.ids.shape[0]  # the codes of this batch
        mean = torch.randn(B, latent_dim, requires_grad=True)  # (B, D)
        logvar = torch.randn(B, latent_dim, requires_grad=True) if gaussian else None
        latent = LatentOutput(z=mean, mean=mean, logvar=logvar)
        (model.config.regularizer.weight * model.regularizer(latent, model.prior)).backward()
        for callback in trainer.callbacks:  # they read the step's output.latent only
            callback.on_step_end(trainer, SimpleNamespace(latent=latent))

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
    parser.add_argument("--out", default="train_speed", help="results/OUT.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()  # the LM runs right-padded ids without a mask,
    #   as the WAE decoder does: causality hides the padding from every real token
    load_before = os.getloadavg()

    base = load("default.yaml", overrides=[f"train.batch_size={args.batch_size}"])
    data = corpus(base, args.batch_size, args.warmup + args.steps)
    batches, vocab = data.batches, data.tokenizer.vocab_size
    overrides = [f"train.batch_size={args.batch_size}"]
    gru = {"mmd": load("default.yaml", overrides=overrides),
           "gan": load("wae_gan.yaml", overrides=overrides),
           "kl": load("vae_kl.yaml", overrides=overrides)}
    transformer = load("transformer_mmd.yaml", overrides=overrides)

    run_dir = Path(tempfile.mkdtemp(prefix="train_speed-"))  # train_step writes nothing here
    cases, trainers = [], {}
    for regularizer, config in gru.items():
        case, trainers[regularizer] = wae_case(f"gru_wae_{regularizer}", config, data,
                                               run_dir, batches)
        cases.append(case)
    torch.manual_seed(0)
    gru_lm = GRULanguageModel(gru["mmd"].model, vocab)
    cases.append(Case("gru_lm", lm_stepper(gru_lm, gru_lm, gru["mmd"]), batches))
    cases.append(wae_case("transformer_wae", transformer, data, run_dir, batches,
                          with_flops=True)[0])
    cases.append(gpt2_case("gpt2_lm", transformer, vocab, batches))
    for width in args.widths:
        wide = load("transformer_mmd.yaml", overrides=[
            *overrides, f"model.transformer_dim={width}", f"model.transformer_ff={4 * width}",
            f"model.transformer_heads={max(width // 64, 1)}"])
        cases.append(wae_case(f"transformer_wae_d{width}", wide, data, run_dir,
                              data.long_batches, with_flops=True)[0])
        cases.append(gpt2_case(f"gpt2_lm_d{width}", wide, vocab, data.long_batches))
    for regularizer, trainer in trainers.items():
        cases.append(regularizer_case(f"{regularizer}_alone", trainer, batches, repeat=20))
    by_name = {case.name: case for case in cases}

    counted = {case.name: counted_flops(case.step, case.batch(0))
               for case in cases if not case.name.endswith("_alone")}
    print(f"{len(cases)} cases, {args.warmup} warm-up + {args.steps} timed rounds, "
          f"batch {args.batch_size}, {args.threads} threads, load {load_before}", flush=True)
    scaling = thread_scaling(args.threads)
    peaks = interleave(cases, args.warmup, args.steps)
    peak = max(peaks)

    rows = []
    for case in cases:
        if case.name.endswith("_alone"):
            continue
        row = {"case": case.name, "step_ms": 1e3 * statistics.median(case.seconds),
               "tokens_per_step": statistics.median(case.tokens),
               "tokens_per_second": statistics.median(
                   t / s for t, s in zip(case.tokens, case.seconds, strict=True)),
               "step_ms_per_round": [round(1e3 * s, 2) for s in case.seconds],
               "counted_gflop_first_batch": counted[case.name] / 1e9}
        if case.flops is not None:
            row["model_gflop_per_step"] = statistics.median(case.model_flops) / 1e9
            row["formula_gflop_first_batch"] = case.flops(case.batch(0)) / 1e9
            row["mfu"] = statistics.median(  # against the matmul timed next to each step
                f / s / p for f, s, p in zip(case.model_flops, case.seconds, case.peaks,
                                             strict=True))
            row["mfu_vs_run_peak"] = statistics.median(
                f / s / peak for f, s in zip(case.model_flops, case.seconds, strict=True))
            row["adjacent_peak_gflops_per_round"] = [round(p / 1e9, 1) for p in case.peaks]
        rows.append(row)
    pairs = [("gru_wae_mmd", "gru_lm"), ("transformer_wae", "gpt2_lm")] + [
        (f"transformer_wae_d{w}", f"gpt2_lm_d{w}") for w in args.widths]
    ratios = {f"{a}/{b}": median_ratio(by_name[a], by_name[b]) for a, b in pairs}
    flop_ratios = {f"{a}/{b}": counted[a] / counted[b] for a, b in pairs}  # the same batch
    shares = {}
    for regularizer in gru:
        alone, step = by_name[f"{regularizer}_alone"], by_name[f"gru_wae_{regularizer}"]
        shares[regularizer] = {"alone_ms": 1e3 * statistics.median(alone.seconds),
                               "step_ms": 1e3 * statistics.median(step.seconds),
                               "share": median_ratio(alone, step)}

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
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "load_average_before": load_before, "load_average_after": load_after,
        "configs": {"gru_wae_mmd": "configs/default.yaml", "gru_wae_gan": "configs/wae_gan.yaml",
                    "gru_wae_kl": "configs/vae_kl.yaml",
                    "transformer_wae": "configs/transformer_mmd.yaml",
                    **{f"transformer_wae_d{w}": f"configs/transformer_mmd.yaml, dim {w}, ff "
                       f"{4 * w}, heads {max(w // 64, 1)}, units of {LONG_LENGTH} tokens"
                       for w in args.widths}},
        "flops_formula": "6 * linear weights * positions + 12 * layers * width * context * "
                         "positions per transformer stack, + 6 * per-unit weights * B",
        "matmul_gflops_by_threads": scaling,
        "matmul_peak_gflops": peak / 1e9, "matmul_peak_gflops_per_round": [p / 1e9 for p in peaks],
        "results": rows, "wae_over_lm": ratios,
        "wae_over_lm_counted_flops": flop_ratios, "regularizer_share": shares,
        "profiles": profiles,
    }
    print(f"wrote {write_results(args.out, report).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
