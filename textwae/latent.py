"""Latent heads: pooled encoder state -> code z, either a point estimate or a Gaussian."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LatentOutput:
    z: torch.Tensor  # (B, D) the code the decoder sees
    mean: torch.Tensor  # (B, D) the posterior mean: z itself for a deterministic encoder
    logvar: torch.Tensor | None = None  # (B, D) Gaussian posterior only

    def float(self) -> LatentOutput:
        """In fp32 (fp32 tensors are kept as they are): losses on codes made under autocast."""
        logvar = None if self.logvar is None else self.logvar.float()
        return LatentOutput(z=self.z.float(), mean=self.mean.float(), logvar=logvar)


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


def logvar_penalty(logvar: torch.Tensor | None) -> torch.Tensor | float:
    """Mean over the batch of sum_d |log sigma_d^2|.

    Without it a stochastic WAE drives the variances to zero and becomes deterministic
    (Bahuleyan et al., 2019); the penalty is zero exactly at unit variance.
    """
    return 0.0 if logvar is None else logvar.abs().sum(dim=-1).mean()


LATENTS = {"deterministic": DeterministicLatent, "gaussian": GaussianLatent}
