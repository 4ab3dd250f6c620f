"""The one training loop: steps, validation, checkpoints and exact resume, model-agnostic."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from textwae.config.schema import Config, TrainConfig, training_precision
from textwae.distributed import broadcast_float, gather_rows, rank_and_world
from textwae.errors import RunDirectoryError, TrainingError, TrainingInterrupted
from textwae.evaluation.teacher_forced import validation_metrics
from textwae.models.autoencoder import TextWAEOutput
from textwae.models.story import StoryCodes, StoryOutput
from textwae.runs import checkpoint
from textwae.runs.metrics_log import MetricsLog
from textwae.text.batching import BucketBatchSampler, SampledBatches, TokenizedTexts, chunks
from textwae.training.callbacks import Callback, StepRecord, ValidationRecord
from textwae.training.interrupt import OnSignal, exit_status, stop_reason


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

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Progress:
        """A saved progress record, its fields checked: a crafted state is refused here."""
        fields = {field.name: field.type for field in dataclasses.fields(cls)}
        if not isinstance(state, dict) or set(state) != set(fields):
            raise ValueError(f"progress must hold exactly {', '.join(fields)}")
        for name, kind in fields.items():
            value = state[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                    kind == "int" and not isinstance(value, int)) or value < 0:
                raise ValueError(f"progress.{name} is {value!r}, not a count")
        return cls(**state)

    @classmethod
    def saved_in(cls, path: Path) -> Progress:
        """The progress of a saved training state, read without its tensors."""
        structure = checkpoint.load_metadata(checkpoint.resumable(path)).get("structure", "{}")
        try:
            return cls.from_state(json.loads(structure).get("progress"))
        except (ValueError, AttributeError) as error:
            raise RunDirectoryError(f"cannot resume: {path} is not a training state of this run "
                                    f"({error})") from error


def finished(progress: Progress, cfg: TrainConfig) -> bool:
    """Whether `progress` has reached the step cap or the time budget of `cfg`."""
    return progress.step >= cfg.max_steps or (
        cfg.max_time is not None and progress.elapsed >= cfg.max_time)


class Trainable(Protocol):
    """What the Trainer needs of a model (`TextWAE`, or the story level's `StoryModel`),
    beyond being an `nn.Module` whose call returns an output with a `loss`."""

    config: Config

    def model_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradients are clipped together."""
        ...

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """AdamW's parameter groups: which parameters decay."""
        ...

    def save_pretrained(self, run_dir: str | Path) -> None:
        """The weights and config for `from_pretrained`."""
        ...

    def load_weights(self, weights: dict[str, torch.Tensor], source: Path | str) -> None:
        """Weights of a saved state, refused with the file's name when they do not fit."""
        ...

Validation = Callable[[Any, Any, int | None, int], dict[str, float]]


class BatchSource(Protocol):
    """Where training batches come from: in memory (`sampled_batches`) or a stream
    (`StreamedBatches`). An epoch's batches are the same at every call, so a resumed run
    starts again at batch `start` of its epoch and trains exactly what it would have."""

    def batches(self, epoch: int, start: int = 0) -> Generator[Any, None, None]:
        """This rank's batches of `epoch`, from batch number `start` on; closed when
        training stops mid-epoch."""
        ...


def sampled_batches(data: TokenizedTexts | StoryCodes, lengths: list[int],
                    cfg: TrainConfig) -> SampledBatches:
    """In-memory units (of `lengths`) as a batch source: length-bucketed batches of
    `cfg.batch_size`, shuffled by `cfg.seed` and dealt to this process's rank."""
    rank, world = rank_and_world()
    return SampledBatches(data, BucketBatchSampler(lengths, cfg.batch_size, seed=cfg.seed,
                                                   num_replicas=world, rank=rank))


class Trainer:
    """Trains a TextWAE on token sequences, or a story model on sentence codes, writing
    everything into `run_dir`."""

    def __init__(self, model: Trainable, train: BatchSource,
                 valid: TokenizedTexts | StoryCodes, run_dir: str | Path,
                 callbacks: Sequence[Callback] = (), validate: Validation = validation_metrics,
                 cfg: TrainConfig | None = None) -> None:
        """`train` gives the training batches, units' label-guided modes with them.
        `validate(model, valid, max_batches, seed)` gives the validation metrics ("loss" picks
        the best weights); `cfg` is the budget, by default the model's `train` section."""
        self.model = model
        self.callbacks = list(callbacks)
        self.cfg = cfg or model.config.train
        self.valid, self.validate = valid, validate
        self.run_dir = Path(run_dir)
        self.device = torch.device(self.cfg.device)
        self.precision = training_precision(self.cfg.precision, self.cfg.device)
        self.rank, self.world = rank_and_world()
        model.to(self.device)
        # what a training step calls: under torchrun, DDP averages the ranks' gradients. An
        # adaptive softmax leaves a cluster without gradient in a batch with no target in it
        adaptive = any(isinstance(m, nn.AdaptiveLogSoftmaxWithLoss) for m in model.modules())
        self.network = (DistributedDataParallel(model, find_unused_parameters=adaptive)
                        if self.world > 1 else model)
        self.optimizer = torch.optim.AdamW(model.optimizer_groups(self.cfg.weight_decay),
                                           lr=self.cfg.lr,
                                           fused=self.device.type == "cuda" or None)
        self.train_batches = train
        self.progress = Progress()
        self.metrics_log = MetricsLog(self.run_dir)
        self.last_metrics: dict[str, float] = {}  # of the latest validation

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
            raise RunDirectoryError(
                f"the run was saved by {state['rng'].shape[0]} processes; resume it with as "
                f"many, not {self.world}")
        # a copy: set_rng_state reads a view's storage from its start, i.e. rank 0's row
        torch.set_rng_state(state["rng"][self.rank].clone())
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"][self.rank].clone(), self.device)
        self.progress = Progress.from_state(state["progress"])
        saved = state["callbacks"]
        if len(saved) > len(self.callbacks):
            raise RunDirectoryError(f"the run's state holds {len(saved)} callbacks' states, but "
                                    f"this training has {len(self.callbacks)}")
        # a run saved before a callback was added (the last ones) leaves that one as it starts
        for callback, callback_state in zip(self.callbacks, saved, strict=False):
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
        path = checkpoint.resumable(self.run_dir / checkpoint.STATE_FILE)
        state = checkpoint.load_state(path)
        try:
            self.load_state_dict(state)
        except RunDirectoryError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as error:
            raise RunDirectoryError(f"cannot resume: {path} is not a training state of this run "
                                    f"({type(error).__name__}: {error})") from error
        if self._main_only():
            self.metrics_log.drop_after(self.progress.step)

    # -- loop --------------------------------------------------------------------------

    def _done(self) -> bool:
        return finished(self.progress, self.cfg)

    def _main_only(self) -> bool:
        """Logging, metrics, evaluation and checkpoints happen on rank 0 alone."""
        return self.rank == 0

    def _fraction_done(self) -> float:
        fraction = self.progress.step / self.cfg.max_steps
        if self.cfg.max_time is not None:
            fraction = max(fraction, self.progress.elapsed / self.cfg.max_time)
        return fraction

    def fit(self) -> dict[str, float]:
        """Train until `max_steps` or `max_time`; return the last validation metrics.

        Ctrl-C, SIGTERM or SIGHUP stops at the end of the step under way, saves a resumable
        state and raises `TrainingInterrupted`.
        """
        bar = tqdm(total=self.cfg.max_steps, initial=self.progress.step, file=sys.stderr,
                   desc="train", dynamic_ncols=True, disable=None if self.rank == 0 else True)
        with OnSignal(defer=True) as stop:
            signalled = self._loop(bar, stop)
            bar.close()
            if signalled:
                self.save_state()  # a second signal now stops at once; the old state stays whole
                raise TrainingInterrupted(
                    f"{stop_reason(signalled)} after step {self.progress.step}; {self.run_dir} "
                    "holds a resumable state: continue with --resume", exit_status(signalled))
        if self.progress.step % self.cfg.eval_every != 0 and self._main_only():
            self.last_metrics = self.evaluate_and_keep_best()
        self.save_state()
        return self.last_metrics

    def _loop(self, bar: tqdm, stop: OnSignal) -> int:
        """The steps; the number of the signal that stopped them, or 0 (rank 0's decides, so
        ranks agree)."""
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
                        self.last_metrics = self.evaluate_and_keep_best()
                    if p.step % self.cfg.checkpoint_every == 0:
                        self.save_state()
                    now = time.perf_counter()  # wall clock: batching, evaluation, saving included
                    p.elapsed, clock = broadcast_float(p.elapsed + now - clock), now
                    signalled = int(broadcast_float(float(stop.requested)))
                    if signalled:
                        return signalled
                    if self._done():
                        break
                else:
                    self.progress.epoch += 1
                    self.progress.batch_in_epoch = 0
        return 0

    def train_step(self, batches: Any) -> TextWAEOutput | StoryOutput:
        """One optimiser step on the gradients of `batches` (a batch, or a list of
        micro-batches), each loss divided by their number; returns the last micro-batch's
        output, which the callbacks see."""
        batches = list(batches) if isinstance(batches, list) else [batches]
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
                                    enabled=self.precision == "bf16"):
                    output = self.network(batch, batch.components)
                if not torch.isfinite(output.loss):
                    kept = ("keeps its last saved state" if (self.run_dir / checkpoint.STATE_FILE)
                            .is_file() else "is removed: no state was saved yet")
                    raise TrainingError(
                        f"the loss became {output.loss.item()} at step {self.progress.step + 1}; "
                        f"stopped, and {self.run_dir} {kept}. Try a lower train.lr or "
                        "regularizer.weight.")
                (output.loss / len(batches)).backward()
        torch.nn.utils.clip_grad_norm_(self.model.model_parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        record = StepRecord(step=self.progress.step, output=output)
        for callback in self.callbacks:
            callback.on_step_end(record)
        return output

    def evaluate(self) -> dict[str, float]:
        """The validation metrics (for texts: teacher-forced reconstruction loss, token
        accuracy and MMD of codes to the prior)."""
        return self.validate(self.model, self.valid, self.cfg.eval_batches, self.cfg.seed)

    def evaluate_and_keep_best(self) -> dict[str, float]:
        metrics = self.evaluate()
        self._write_metrics({"split": "valid", **metrics})
        if metrics["loss"] < self.progress.best_valid:
            self.progress.best_valid = metrics["loss"]
            self.model.save_pretrained(self.run_dir)
        for callback in self.callbacks:
            callback.on_validation(ValidationRecord(self.progress.step, metrics))
        return metrics

    def _log_train(self, output: TextWAEOutput | StoryOutput, bar: tqdm) -> None:
        record = {"split": "train", "loss": output.loss.item(), "recon": output.recon.item(),
                  "reg": output.reg.item(), "lr": self.optimizer.param_groups[0]["lr"]}
        bar.set_postfix(loss=f"{record['loss']:.3f}", recon=f"{record['recon']:.3f}",
                        reg=f"{record['reg']:.4f}")
        self._write_metrics(record)

    def _write_metrics(self, record: dict[str, Any]) -> None:
        p = self.progress
        line = {"step": p.step, "elapsed": round(p.elapsed, 3),
                "tokens_per_second": round(p.tokens / max(p.elapsed, 1e-9), 1), **record}
        self.metrics_log.append(line)
