"""Hooks into the one training loop, for work that rides along with each step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textwae.model import TextWAEOutput
    from textwae.training import Trainer


class Callback:
    """Override what you need; the trainer saves and restores `state_dict` on resume."""

    def on_step_end(self, trainer: Trainer, output: TextWAEOutput) -> None:
        """Called after every optimiser step of the model, with that step's output."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
