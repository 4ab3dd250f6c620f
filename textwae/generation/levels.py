"""The level generation works at: what the one core (`textwae.generation.operations`) needs
of a model, whatever its outputs are (a sentence, a story).

A level has a prior over its codes and the labels of its modes, the run's generation
settings, a way from texts to codes (`encode`) and from codes to outputs (`decode`, names
still roles), the text of an output, and the filling of names. `SentenceLevel` is a sentence
model's; the story levels are in `textwae.generation.stories`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch

from textwae.config.schema import GenerationConfig
from textwae.generation.decoding import DecodingConfig, casts_of, decode_texts, with_names
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import encode
from textwae.objectives.priors import MixtureOfGaussians
from textwae.text.names import Cast

Output = TypeVar("Output")  # what a code decodes into: a text, a story


class Level(Protocol[Output]):
    """What sampling, reconstruction, interpolation and transfer need of a model."""

    @property
    def prior(self) -> MixtureOfGaussians:
        """The prior of the level's codes, whose components are its modes."""
        ...

    @property
    def labels(self) -> list[str] | None:
        """The label of each mode, in order (label-guided modes), else None."""
        ...

    @property
    def settings(self) -> GenerationConfig:
        """The run's generation: section (redraws, transfer strengths)."""
        ...

    def encode(self, texts: list[str]) -> torch.Tensor:
        """The code (N, D) of each text: its posterior mean. Refuses empty texts."""
        ...

    def decode(self, codes: torch.Tensor, decoding: DecodingConfig,
               generator: torch.Generator) -> list[Output]:
        """The output of each code (N, D), its names still roles (data.mask_names)."""
        ...

    def text(self, output: Output) -> str:
        """An output as one line of text, as `encode` reads it."""
        ...

    def casts(self, texts: list[str]) -> list[Cast] | None:
        """Each input text's names by role, for its outputs to keep (None: no roles)."""
        ...

    def fill_names(self, outputs: list[Output], generator: torch.Generator,
                   casts: Sequence[Cast] | None) -> list[Output]:
        """The outputs with their roles filled: output i takes casts[i]'s names, else new
        ones (`textwae.generation.decoding.with_names`)."""
        ...

    def record(self, output: Output, mode: int) -> dict[str, Any]:
        """An output and its code's mode as one JSON object (`generate --format jsonl`)."""
        ...


@dataclass
class SentenceLevel:
    """A sentence model's level: its outputs are texts."""

    model: TextWAE

    @property
    def prior(self) -> MixtureOfGaussians:
        return self.model.prior

    @property
    def labels(self) -> list[str] | None:
        return self.model.config.prior.labels

    @property
    def settings(self) -> GenerationConfig:
        return self.model.config.generation

    def encode(self, texts: list[str]) -> torch.Tensor:
        return encode(self.model, texts).mean

    def decode(self, codes: torch.Tensor, decoding: DecodingConfig,
               generator: torch.Generator) -> list[str]:
        return decode_texts(self.model, codes, decoding, generator)

    def text(self, output: str) -> str:
        return output

    def casts(self, texts: list[str]) -> list[Cast] | None:
        return casts_of(self.model, texts)

    def fill_names(self, outputs: list[str], generator: torch.Generator,
                   casts: Sequence[Cast] | None) -> list[str]:
        return with_names(self.model, outputs, generator, casts)

    def record(self, output: str, mode: int) -> dict[str, Any]:
        return {"text": output, "mode": mode}
