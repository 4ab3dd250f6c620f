"""A level with no model: a code's output is the text of its numbers, read back exactly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from textwae.config.schema import GenerationConfig, PriorConfig
from textwae.generation import DecodingConfig
from textwae.objectives.priors import MixtureOfGaussians
from textwae.text.names import Cast


class CodeLevel:
    """Decoding writes each code's numbers, encoding reads them back, so a generated output
    reads as exactly the code it came from. `decoded` counts the codes decoded."""

    def __init__(self, components: int = 3, dim: int = 2, **settings: Any) -> None:
        self.prior = MixtureOfGaussians(PriorConfig(components=components), dim)
        self.labels = [f"mode{k}" for k in range(components)]
        self.settings = GenerationConfig(**settings)
        self.decoded = 0

    def encode(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[float(value) for value in text.split()] for text in texts])

    def decode(self, codes: torch.Tensor, decoding: DecodingConfig,
               generator: torch.Generator) -> list[str]:
        self.decoded += len(codes)
        return [" ".join(f"{value:.6f}" for value in code) for code in codes.tolist()]

    def text(self, output: str) -> str:
        return output

    def casts(self, texts: list[str]) -> list[Cast] | None:
        return None

    def fill_names(self, outputs: list[str], generator: torch.Generator,
                   casts: Sequence[Cast] | None) -> list[str]:
        return outputs

    def record(self, output: str, mode: int) -> dict[str, Any]:
        return {"text": output, "mode": mode}
