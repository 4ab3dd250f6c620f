"""The held-out codes the explorer draws: their texts, labels, modes and 2-D projection."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from textwae.data.labels import mode_name
from textwae.data.records import Example
from textwae.errors import DataError
from textwae.evaluation.plots import pca_2d
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import codes_of

MAX_POINTS = 2000  # units drawn at most (a seeded sample of larger data): the page stays quick


@dataclass(frozen=True)
class LatentMap:
    """Held-out units, their codes (N, D) and modes, and the 2-D PCA plane of those codes."""

    texts: list[str]
    labels: list[str | None]
    codes: torch.Tensor  # (N, D) posterior means
    modes: list[int]  # each code's prior component
    xy: torch.Tensor  # (N, 2) the codes on their first two principal axes
    means_xy: torch.Tensor  # (K, 2) the prior's component means on the same axes
    mode_names: list[str]  # "0", or "0 praise" where a label owns the mode
    total: int  # held-out units before the sample of MAX_POINTS

    def project(self, codes: torch.Tensor) -> torch.Tensor:
        """Other codes (M, D) on the map's plane: (M, 2)."""
        return pca_2d(self.codes, codes)[1]

    @property
    def has_labels(self) -> bool:
        return any(label is not None for label in self.labels)


def mode_names(model: TextWAE) -> list[str]:
    """A display name per mode: its index, and the label that owns it if any."""
    labels = model.config.prior.labels
    names = []
    for mode in range(model.prior.components):
        name = mode_name(labels, mode)
        names.append(f"{mode} {name}" if name else str(mode))
    return names


def build_latent_map(model: TextWAE, examples: list[Example], max_points: int = MAX_POINTS,
                     seed: int = 0) -> LatentMap:
    """Encode the examples (a seeded sample of `max_points` if there are more) and project
    their codes, and the prior's means, on the codes' first two principal axes."""
    if not examples:
        raise DataError("there are no held-out units to draw on the map")
    total = len(examples)
    if total > max_points:
        chosen = sorted(random.Random(seed).sample(range(total), max_points))
        examples = [examples[i] for i in chosen]
    texts = [example.text for example in examples]
    codes = codes_of(model, texts)  # on the model's device
    xy, means_xy = pca_2d(codes, model.prior.means)
    return LatentMap(texts=texts, labels=[example.label for example in examples],
                     codes=codes.cpu(), modes=model.prior.assign(codes).tolist(), xy=xy,
                     means_xy=means_xy, mode_names=mode_names(model), total=total)
