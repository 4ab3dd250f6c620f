"""Regularisers D(Q_Z, P_Z): each turns a batch of codes into one scalar to add to the loss."""

from __future__ import annotations

import torch
from torch import nn

from textwae.config import RegularizerConfig
from textwae.divergences import mmd
from textwae.latent import LatentOutput
from textwae.priors import MixtureOfGaussians


class MMDRegularizer(nn.Module):
    """WAE-MMD: the batch's codes against as many fresh prior samples."""

    def __init__(self, cfg: RegularizerConfig, prior: MixtureOfGaussians) -> None:
        super().__init__()
        self.cfg = cfg
        self.prior = prior

    def forward(self, latent: LatentOutput) -> torch.Tensor:
        z = latent.z
        samples = self.prior.sample(z.shape[0]).to(z.dtype)
        base = self.prior.mean_squared_distance()
        return mmd(z, samples, base, self.cfg.scales, self.cfg.kernel)


REGULARIZERS = {"mmd": MMDRegularizer}
