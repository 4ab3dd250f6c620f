"""A notice, once per run, that the model is memorising its training split.

On a few thousand texts a decoder trained from scratch learns the training units by heart:
its training loss falls while the held-out loss stays flat, and without a word the user
would read the samples of a model that stopped generalising long before its time ran out.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from tqdm import tqdm

from textwae.training.callbacks import Callback, StepRecord, ValidationRecord

PATIENCE = 2  # validations without a new best held-out reconstruction ...
MIN_IMPROVEMENT = 0.01  # ... (a relative gain below this is none) ...
TRAIN_DROP = 0.05  # ... while the training reconstruction fell by this share since the best


class PlateauNotice(Callback):
    """Compares each validation's reconstruction loss with the mean training reconstruction
    of the steps before it; says so once when validation stopped improving while training
    kept falling."""

    def __init__(self) -> None:
        self.recent: list[torch.Tensor] = []  # training reconstructions since the last
        #   validation, kept as tensors: reading each would wait for a GPU every step
        # the best held-out reconstruction so far and the mean training one before it
        self.best: tuple[float, float] | None = None
        self.best_step = 0
        self.since_best = 0  # validations since the best
        self.told = False

    def on_step_end(self, record: StepRecord) -> None:
        self.recent.append(record.output.recon.detach().float())

    def on_validation(self, record: ValidationRecord) -> None:
        if not self.recent:  # a validation with no step before it (a final one)
            return
        train = sum(value.item() for value in self.recent) / len(self.recent)
        self.recent = []
        valid = record.metrics["recon"]
        if self.best is None or valid < self.best[0] * (1 - MIN_IMPROVEMENT):
            self.best, self.best_step, self.since_best = (valid, train), record.step, 0
            return
        self.since_best += 1
        memorising = train < self.best[1] * (1 - TRAIN_DROP)
        if not self.told and self.since_best >= PATIENCE and memorising:
            self.told = True
            tqdm.write(self.message(record.step, valid, train), file=sys.stderr)

    def message(self, step: int, valid: float, train: float) -> str:
        assert self.best is not None
        return (f"notice: at step {step} the held-out reconstruction loss ({valid:.3f}) has not "
                f"improved on step {self.best_step}'s ({self.best[0]:.3f}) while the training "
                f"loss fell from {self.best[1]:.3f} to {train:.3f}: the decoder is "
                "memorising the training split rather than learning the language. The run keeps "
                "the weights of its best validation. Options: more data, a pretrained encoder or "
                "decoder (model.encoder_pretrained, model.decoder_pretrained), or fewer steps "
                "(train.max_time, train.max_steps)")

    def state_dict(self) -> dict[str, Any]:
        recent = torch.stack([value.cpu() for value in self.recent]) if self.recent else \
            torch.zeros(0)
        # losses as tensors: a resumed run's match its uninterrupted twin's to rounding
        return {"recent": recent, "best": torch.tensor(self.best or [], dtype=torch.float64),
                "best_step": self.best_step, "since_best": self.since_best, "told": self.told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.state_dict()):
            raise ValueError(f"a plateau notice's state holds {', '.join(self.state_dict())}")
        for key, value in state.items():
            setattr(self, key, value)
        self.recent = list(state["recent"])
        best = state["best"].tolist()
        self.best = (best[0], best[1]) if best else None
