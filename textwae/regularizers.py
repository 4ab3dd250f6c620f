"""Regularisers D(Q_Z, P_Z): each turns a batch's latent output into one scalar to add to the loss.

Every regulariser is built as `cls(cfg, latent_dim)` and called as `reg(latent, prior)`.
Parameters a regulariser owns (a discriminator) are trained by its own training callback,
never by the model's optimiser.
"""

from __future__ import annotations

import torch
from torch import nn

from textwae.callbacks import Callback
from textwae.config import Config, RegularizerConfig
from textwae.divergences import mmd
from textwae.latent import LatentOutput
from textwae.priors import MixtureOfGaussians


class Regularizer(nn.Module):
    """Base: a divergence that needs nothing beyond the model's own optimiser."""

    def callbacks(self, config: Config) -> list[Callback]:
        """Training callbacks this regulariser needs (a discriminator's updates)."""
        return []


class MMDRegularizer(Regularizer):
    """WAE-MMD: the batch's codes against as many fresh prior samples."""

    def __init__(self, cfg: RegularizerConfig, latent_dim: int) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, latent: LatentOutput, prior: MixtureOfGaussians) -> torch.Tensor:
        z = latent.z
        samples = prior.sample(z.shape[0]).to(z.dtype)
        return mmd(z, samples, prior.mean_squared_distance(), self.cfg.scales, self.cfg.kernel)


REGULARIZERS = {"mmd": MMDRegularizer}
