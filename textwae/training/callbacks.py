"""Hooks into the one training loop, for work that rides along with each step.

A callback sees a small `StepRecord` (the step number and that step's output), never the
Trainer, so it cannot reach into the loop's state; what it keeps is saved for resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textwae.models.autoencoder import TextWAEOutput
from textwae.objectives.regularizers import StepHook


@dataclass(frozen=True)
class StepRecord:
    step: int  # optimiser steps done before this one
    output: TextWAEOutput  # the step's (last micro-batch's) output


@dataclass(frozen=True)
class ValidationRecord:
    step: int  # optimiser steps done
    metrics: dict[str, float]  # the validation metrics ("loss", "recon", ...)


class Callback:
    """Override what you need; the trainer saves and restores `state_dict` on resume."""

    def on_step_end(self, record: StepRecord) -> None:
        """Called after every optimiser step of the model."""

    def on_validation(self, record: ValidationRecord) -> None:
        """Called after each validation (rank 0 alone), once the best weights are kept."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class RegularizerHook(Callback):
    """A regulariser's own step hook (a discriminator's update, KL annealing) as a callback."""

    def __init__(self, hook: StepHook) -> None:
        self.hook = hook

    def on_step_end(self, record: StepRecord) -> None:
        self.hook.after_step(record.step, record.output.latent)

    def state_dict(self) -> dict[str, Any]:
        return self.hook.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hook.load_state_dict(state)
