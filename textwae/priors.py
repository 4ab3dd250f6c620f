"""The latent prior P_Z: a mixture of K isotropic Gaussians whose modes can carry meanings."""

from __future__ import annotations

import math

import torch
from torch import nn

from textwae.config import PriorConfig
from textwae.divergences import squared_distances


def component_means(components: int, dim: int, spread: float) -> torch.Tensor:
    """K means at distance `spread` from the origin, as far apart as simple geometry allows.

    K <= D: orthogonal axes (every pair equally far apart); K <= 2D: plus/minus axes;
    beyond that, seeded random directions.
    """
    if components <= 2 * dim:
        axes = torch.eye(dim)
        directions = torch.cat([axes, -axes])[:components]
    else:
        generator = torch.Generator().manual_seed(0)
        directions = torch.randn(components, dim, generator=generator)
        directions = directions / directions.norm(dim=1, keepdim=True)
    return spread * directions  # (K, D)


class MixtureOfGaussians(nn.Module):
    """p(z) = sum_k w_k N(z; mu_k, s_k^2 I), components numbered 0..K-1."""

    def __init__(self, cfg: PriorConfig, dim: int) -> None:
        super().__init__()
        self.dim = dim
        K = cfg.components
        self.register_buffer("means", component_means(K, dim, cfg.spread))  # (K, D)
        self.register_buffer("log_scales", torch.full((K,), math.log(cfg.scale)))  # (K,)
        self.register_buffer("logits", torch.zeros(K))  # (K,) mixture weights before softmax

    @property
    def components(self) -> int:
        return self.means.shape[0]

    @property
    def weights(self) -> torch.Tensor:
        return self.logits.softmax(dim=0)

    def _check_component(self, component: int) -> None:
        if not 0 <= component < self.components:
            raise ValueError(f"mode {component} is out of range: this prior has modes "
                             f"0..{self.components - 1}")

    def sample(self, n: int, component: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from the whole mixture, or from one component when `component` is given."""
        device = self.means.device
        if component is None:
            chosen = torch.multinomial(self.weights.detach().cpu(), n, replacement=True,
                                       generator=generator).to(device)
        else:
            self._check_component(component)
            chosen = torch.full((n,), component, dtype=torch.long, device=device)
        noise = torch.randn(n, self.dim, generator=generator).to(device)  # (n, D)
        return self.means[chosen] + self.log_scales[chosen].exp()[:, None] * noise

    def component_log_probs(self, z: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(z; mu_k, s_k^2 I) for every code and component: (N, K)."""
        squared = squared_distances(z, self.means)  # (N, K)
        variances = (2 * self.log_scales).exp()  # (K,)
        log_normal = -0.5 * (squared / variances + self.dim * (math.log(2 * math.pi)
                                                                + 2 * self.log_scales))
        return self.weights.log() + log_normal

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.component_log_probs(z).logsumexp(dim=1)  # (N,)

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """The most likely component of each code: (N,) long."""
        return self.component_log_probs(z).argmax(dim=1)

    def mean_squared_distance(self) -> torch.Tensor:
        """E ||a - b||^2 for a, b drawn independently from the prior: the IMQ base scale C.

        2 D E[s^2] from the noise, plus twice the weighted spread of the means.
        """
        w = self.weights
        noise = 2 * self.dim * (w * (2 * self.log_scales).exp()).sum()
        centre = (w[:, None] * self.means).sum(dim=0)
        spread = (w * (self.means - centre).pow(2).sum(dim=1)).sum()
        return noise + 2 * spread
