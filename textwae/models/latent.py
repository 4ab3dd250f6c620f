"""Latent heads: pooled encoder state -> code z, either a point estimate or a Gaussian."""

from __future__ import annotations

import torch
from torch import nn

from textwae.objectives.codes import LatentOutput


class DeterministicLatent(nn.Module):
    """z = W h: the WAE needs no posterior noise, since only the aggregate Q_Z is matched."""

    def __init__(self, input_size: int, latent_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(input_size, latent_dim)

    def forward(self, pooled: torch.Tensor) -> LatentOutput:
        z = self.project(pooled)
        return LatentOutput(z=z, mean=z)


class GaussianLatent(nn.Module):
    """q(z|x) = N(mean, diag exp(logvar)), reparameterised while training; the mean otherwise."""

    def __init__(self, input_size: int, latent_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(input_size, 2 * latent_dim)

    def forward(self, pooled: torch.Tensor) -> LatentOutput:
        mean, logvar = self.project(pooled).chunk(2, dim=-1)  # (B, D) each
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean) if self.training else mean
        return LatentOutput(z=z, mean=mean, logvar=logvar)


LATENTS = {"deterministic": DeterministicLatent, "gaussian": GaussianLatent}
