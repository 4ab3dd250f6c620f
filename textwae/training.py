"""The one training loop: data -> tokenizer -> model -> steps, evaluation and checkpoints."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from textwae import checkpoint
from textwae.batching import (
    Batch,
    BucketBatchSampler,
    SampledBatches,
    TokenizedTexts,
    chunks,
)
from textwae.callbacks import Callback
from textwae.config import Config, TrainConfig
from textwae.data import DataError, Example, load_splits
from textwae.distributed import barrier, broadcast_float, gather_rows, rank_and_world
from textwae.divergences import mmd
from textwae.model import TextWAE, TextWAEOutput
from textwae.modes import mode_labels, unit_components
from textwae.pretrained import needs_sentencepiece
from textwae.streaming import StreamedBatches
from textwae.tokenized import sequence_lengths
from textwae.tokenizer import Tokenizer

MAX_MMD_CODES = 1000  # validation MMD is quadratic in the number of codes


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the run directory keeps its last good state."""


def learning_rate(cfg: TrainConfig, progress: float, step: int) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to `lr * min_lr_ratio`.

    `progress` in [0, 1] is the larger of the step and the time budget used, so a run
    limited by `max_time` still ends its schedule when its time ends.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


@dataclass
class Progress:
    """Where training stands: everything but tensors that an exact resume needs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # the next batch of `epoch` to train on
    elapsed: float = 0.0  # seconds of training so far, over all sessions
    tokens: int = 0  # units' tokens (bos/eos included) trained on so far
    best_valid: float = math.inf


class Trainer:
    """Trains a TextWAE on token sequences, writing everything into `run_dir`."""

    def __init__(self, model: TextWAE, train: TokenizedTexts | StreamedBatches,
                 valid: TokenizedTexts, run_dir: str | Path,
                 callbacks: Sequence[Callback] = ()) -> None:
        """`train` is in memory (batched by a `BucketBatchSampler` here) or a stream; units'
        label-guided modes, if any, come with their token ids."""
        self.model = model
        self.callbacks = list(callbacks)
        self.cfg = model.config.train
        self.valid_texts = valid
        self.run_dir = Path(run_dir)
        self.device = torch.device(self.cfg.device)
        self.rank, self.world = rank_and_world()
        model.to(self.device)
        # what a training step calls: under torchrun, DDP averages the ranks' gradients
        self.network = DistributedDataParallel(model) if self.world > 1 else model
        self.optimizer = torch.optim.AdamW(model.optimizer_groups(self.cfg.weight_decay),
                                           lr=self.cfg.lr,
                                           fused=self.device.type == "cuda" or None)
        self.train_batches = train if isinstance(train, StreamedBatches) else SampledBatches(
            train, BucketBatchSampler(sequence_lengths(train.ids), self.cfg.batch_size,
                                      seed=self.cfg.seed, num_replicas=self.world,
                                      rank=self.rank))
        self.valid_sampler = BucketBatchSampler(sequence_lengths(valid.ids), self.cfg.batch_size,
                                                shuffle=False)
        self.progress = Progress()

    # -- state -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": gather_rows(torch.get_rng_state()),  # (W, S): every rank's generator
            "progress": vars(self.progress).copy(),
            "callbacks": [callback.state_dict() for callback in self.callbacks],
        }
        if self.device.type == "cuda":  # dropout on a GPU draws from the GPU's generator
            state["cuda_rng"] = gather_rows(torch.cuda.get_rng_state(self.device))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_weights(state["model"], source=self.run_dir / checkpoint.STATE_FILE)
        self.optimizer.load_state_dict(state["optimizer"])
        if state["rng"].shape[0] != self.world:
            raise checkpoint.RunDirectoryError(
                f"the run was saved by {state['rng'].shape[0]} processes; resume it with as "
                f"many, not {self.world}")
        torch.set_rng_state(state["rng"][self.rank])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"][self.rank], self.device)
        self.progress = Progress(**state["progress"])
        for callback, callback_state in zip(self.callbacks, state["callbacks"], strict=True):
            callback.load_state_dict(callback_state)

    def save_state(self) -> None:
        """Every rank calls this (the RNG states are gathered); rank 0 writes."""
        state = self.state_dict()
        if self.rank != 0:
            return
        if math.isinf(self.progress.best_valid):  # no validation yet: the top holds the last
            self.model.save_pretrained(self.run_dir)
        checkpoint.save_state(self.run_dir / checkpoint.STATE_FILE, state)

    def resume(self) -> None:
        path = self.run_dir / checkpoint.STATE_FILE
        if not path.is_file():
            raise checkpoint.RunDirectoryError(f"cannot resume: {path} does not exist")
        self.load_state_dict(checkpoint.load_state(path))
        if self._main_only():
            self._drop_metrics_after(self.progress.step)

    def _drop_metrics_after(self, step: int) -> None:
        """Forget the records a stopped run wrote after its last saved state (and a line torn
        by a kill): the resumed run trains and logs those steps again."""
        path = self.run_dir / checkpoint.METRICS_FILE
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        checkpoint.atomic_write(path, lambda tmp: tmp.write_text("".join(kept), "utf-8"))

    # -- loop --------------------------------------------------------------------------

    def _done(self) -> bool:
        p, cfg = self.progress, self.cfg
        return p.step >= cfg.max_steps or (cfg.max_time is not None and p.elapsed >= cfg.max_time)

    def _main_only(self) -> bool:
        """Logging, metrics, evaluation and checkpoints happen on rank 0 alone."""
        return self.rank == 0

    def _fraction_done(self) -> float:
        fraction = self.progress.step / self.cfg.max_steps
        if self.cfg.max_time is not None:
            fraction = max(fraction, self.progress.elapsed / self.cfg.max_time)
        return fraction

    def fit(self) -> dict[str, float]:
        """Train until `max_steps` or `max_time`; return the last validation metrics."""
        bar = tqdm(total=self.cfg.max_steps, initial=self.progress.step, file=sys.stderr,
                   desc="train", dynamic_ncols=True, disable=None if self.rank == 0 else True)
        metrics: dict[str, float] = {}
        clock = time.perf_counter()
        while not self._done():
            # closed at once when training stops mid-epoch: a stream's reader threads end
            with contextlib.closing(self.train_batches.batches(
                    self.progress.epoch, start=self.progress.batch_in_epoch)) as batches:
                # one optimiser step per group; an epoch's last group may hold fewer micro-batches
                for group in chunks(batches, self.cfg.grad_accumulation):
                    output = self.train_step([batch.to(self.device) for batch in group])
                    p = self.progress
                    p.batch_in_epoch += len(group)  # counts micro-batches: resume starts exactly
                    p.step += 1
                    p.tokens += sum(int(batch.lengths.sum()) for batch in group)
                    bar.update(1)
                    if p.step % self.cfg.log_every == 0 and self._main_only():
                        self._log_train(output, bar)
                    if p.step % self.cfg.eval_every == 0 and self._main_only():
                        metrics = self.evaluate_and_keep_best()
                    if p.step % self.cfg.checkpoint_every == 0:
                        self.save_state()
                    now = time.perf_counter()  # wall clock: batching, evaluation, saving included
                    p.elapsed, clock = broadcast_float(p.elapsed + now - clock), now
                    if self._done():
                        break
                else:
                    self.progress.epoch += 1
                    self.progress.batch_in_epoch = 0
        bar.close()
        if self.progress.step % self.cfg.eval_every != 0 and self._main_only():
            metrics = self.evaluate_and_keep_best()
        self.save_state()
        return metrics

    def train_step(self, batches: Batch | Sequence[Batch]) -> TextWAEOutput:
        """One optimiser step on the gradients of `batches` (micro-batches), each loss divided
        by their number; returns the last micro-batch's output, which the callbacks see."""
        batches = [batches] if isinstance(batches, Batch) else list(batches)
        self.model.train()
        lr = learning_rate(self.cfg, self._fraction_done(), self.progress.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        for number, batch in enumerate(batches, start=1):
            # under DDP, ranks average their gradients once, in the last backward
            accumulate = self.world > 1 and number < len(batches)
            with self.network.no_sync() if accumulate else nullcontext():
                with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                    enabled=self.cfg.precision == "bf16"):
                    output = self.network(batch, batch.components)
                if not torch.isfinite(output.loss):
                    raise TrainingError(
                        f"the loss became {output.loss.item()} at step {self.progress.step + 1}; "
                        f"stopped, and {self.run_dir} keeps its last good checkpoint. Try a "
                        "lower train.lr or regularizer.weight.")
                (output.loss / len(batches)).backward()
        torch.nn.utils.clip_grad_norm_(self.model.model_parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        for callback in self.callbacks:
            callback.on_step_end(self, output)
        return output

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Teacher-forced reconstruction loss, token accuracy and MMD of codes to the prior."""
        self.model.eval()
        nll = correct = tokens = agree = labelled = 0.0
        codes = []
        batches = SampledBatches(self.valid_texts, self.valid_sampler).batches(0)
        for number, batch in enumerate(batches):
            if self.cfg.eval_batches is not None and number >= self.cfg.eval_batches:
                break
            output = self.model(batch.to(self.device))
            nll += output.recon.item() * output.tokens.item()
            correct += output.correct.item()
            tokens += output.tokens.item()
            codes.append(output.latent.mean)
            components = batch.components
            if components is not None:
                known = components >= 0
                assigned = self.model.prior.assign(output.latent.mean[known])
                agree += (assigned == components[known]).sum().item()
                labelled += known.sum().item()
        z = torch.cat(codes)[:MAX_MMD_CODES]
        prior = self.model.prior
        generator = torch.Generator().manual_seed(self.cfg.seed)
        samples = prior.sample(len(z), generator=generator)
        divergence = mmd(z, samples, prior.mean_squared_distance(),
                         self.model.config.regularizer.scales,
                         self.model.config.regularizer.kernel).item()
        recon = nll / tokens
        metrics = {"recon": recon, "accuracy": correct / tokens, "mmd": divergence,
                   "loss": recon + self.model.config.regularizer.weight * divergence}
        if labelled:
            metrics["mode_agreement"] = agree / labelled  # codes assigned their label's mode
        return metrics

    def evaluate_and_keep_best(self) -> dict[str, float]:
        metrics = self.evaluate()
        self._write_metrics({"split": "valid", **metrics})
        if metrics["loss"] < self.progress.best_valid:
            self.progress.best_valid = metrics["loss"]
            self.model.save_pretrained(self.run_dir)
        return metrics

    def _log_train(self, output: TextWAEOutput, bar: tqdm) -> None:
        record = {"split": "train", "loss": output.loss.item(), "recon": output.recon.item(),
                  "reg": output.reg.item(), "lr": self.optimizer.param_groups[0]["lr"]}
        bar.set_postfix(loss=f"{record['loss']:.3f}", recon=f"{record['recon']:.3f}",
                        reg=f"{record['reg']:.4f}")
        self._write_metrics(record)

    def _write_metrics(self, record: dict[str, Any]) -> None:
        p = self.progress
        line = {"step": p.step, "elapsed": round(p.elapsed, 3),
                "tokens_per_second": round(p.tokens / max(p.elapsed, 1e-9), 1), **record}
        with open(self.run_dir / checkpoint.METRICS_FILE, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def train(config: Config, run_dir: str | Path, resume: bool = False) -> dict[str, float]:
    """Train a model described by `config` into `run_dir`; resume a stopped run with `resume`.

    A new run refuses a directory that already holds files, so nothing is overwritten. Under
    torchrun every rank calls this; rank 0 trains the tokenizer and writes the run directory.
    """
    run_dir = Path(run_dir)
    rank, world = rank_and_world()
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        raise checkpoint.RunDirectoryError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    barrier()  # every rank has looked before rank 0 writes
    torch.manual_seed(config.train.seed)  # the same initial weights on every rank
    if config.train.num_threads is not None:
        torch.set_num_threads(config.train.num_threads)
    train_units, valid_units = load_splits(config.data)
    if not valid_units:
        raise DataError("the validation split is empty")
    if resume:  # refuse a run whose files are missing, corrupt or foreign before writing to it
        TextWAE.from_pretrained(run_dir)
    elif rank == 0:
        tokenizer = (Tokenizer.train((unit.text for unit in train_units), config.tokenizer)
                     if needs_sentencepiece(config.model) else None)
        run_dir.mkdir(parents=True, exist_ok=True)  # once the data and the tokenizer are good
        if tokenizer is not None:
            tokenizer.save(run_dir / checkpoint.TOKENIZER_FILE)
    barrier()  # the tokenizer is trained once and shared
    labels = mode_labels(train_units, config.prior) if config.data.label_field else None
    config.prior.labels = labels  # saved in config.yaml: the label -> mode map
    # a resumed run reads its pretrained parts from the run directory's copies
    model = TextWAE.build(config, run_dir, parts_from_run=resume)
    data = config.data

    def prepare(units: list[Example], labeled_fraction: float = 1.0,
                cache_dir: str | None = data.cache_dir) -> TokenizedTexts:
        """Token ids of `units` and, with labels, each unit's label-guided mode."""
        texts = model.tokenize([unit.text for unit in units], cache_dir)
        if labels is not None:
            texts.components = unit_components(units, labels, labeled_fraction, data.split_seed)
        return texts

    if data.streaming:  # a stream's pools are tokenised as they come, never cached
        train_data = StreamedBatches(
            data, functools.partial(prepare, labeled_fraction=data.labeled_fraction,
                                    cache_dir=None),
            config.train.batch_size, seed=config.train.seed, num_replicas=world, rank=rank)
    else:
        train_data = prepare(train_units, data.labeled_fraction)
    trainer = Trainer(model, train_data, prepare(valid_units), run_dir,
                      callbacks=model.regularizer.callbacks(config))
    torch.manual_seed(config.train.seed + rank)  # ranks differ in dropout and prior samples
    if resume:
        trainer.resume()
    elif rank == 0:
        model.save_pretrained(run_dir)  # a complete run directory from the start
    metrics = trainer.fit()
    if rank == 0:
        from textwae.plots import write_plots  # matplotlib only once training is done

        write_plots(TextWAE.from_pretrained(run_dir, device=config.train.device), run_dir,
                    valid_units)
    return metrics
