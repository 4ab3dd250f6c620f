"""The latent prior P_Z: a mixture of K isotropic Gaussians whose modes can carry meanings.

Fixed by default. With `prior.learnable` its means, scales and weights train with the model,
under three safeguards against collapse: every weight is at least `min_weight / K` by
construction, every scale stays within a factor `scale_range` of `scale` (a smooth bound), and
`penalty()` pushes apart means that come closer than `min_separation` times their initial
closest-pair distance, with a barrier that grows without bound as two means meet.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from textwae.config.schema import PriorConfig
from textwae.errors import ConfigError
from textwae.objectives.divergences import squared_distances


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


def _closest_pair_distance(means: torch.Tensor) -> float:
    if means.shape[0] < 2:
        return 0.0
    distances = torch.pdist(means)  # (K (K - 1) / 2,)
    return float(distances.min())


class MixtureOfGaussians(nn.Module):
    """p(z) = sum_k w_k N(z; mu_k, s_k^2 I), components numbered 0..K-1."""

    def __init__(self, cfg: PriorConfig, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.learnable = cfg.learnable
        self.penalty_weight = cfg.penalty_weight
        K = cfg.components
        means = component_means(K, dim, cfg.spread)  # (K, D)
        log_scales = torch.full((K,), math.log(cfg.scale))  # (K,) raw: see `component_log_scales`
        # the floor guards a learnable prior against collapse; a fixed one has exactly its weights
        self.weight_floor = cfg.min_weight / K if self.learnable else 0.0
        logits = torch.zeros(K)  # (K,) mixture weights before softmax and floor
        if cfg.weights is not None:
            wanted = torch.tensor(cfg.weights, dtype=torch.float32)
            wanted = wanted / wanted.sum()  # (K,)
            logits = (wanted - self.weight_floor).clamp_min(1e-6).log()
        for name, tensor in (("means", means), ("log_scales", log_scales), ("logits", logits)):
            if self.learnable:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)
        self.log_scale_centre = math.log(cfg.scale)
        self.log_scale_range = math.log(cfg.scale_range)
        self.margin = cfg.min_separation * _closest_pair_distance(means)

    @property
    def components(self) -> int:
        return self.means.shape[0]

    @property
    def weights(self) -> torch.Tensor:
        """floor + (1 - K floor) softmax(logits): sums to 1, and no weight below the floor."""
        spare = 1 - self.components * self.weight_floor
        return self.weight_floor + spare * self.logits.softmax(dim=0)  # (K,)

    def component_log_scales(self) -> torch.Tensor:
        """log s_k, smoothly bounded to log(scale) +- log(scale_range): (K,).

        The identity near the centre, so a fixed prior's scales are exactly `scale`.
        """
        offset = self.log_scales - self.log_scale_centre
        return self.log_scale_centre + self.log_scale_range * torch.tanh(
            offset / self.log_scale_range)

    def check_component(self, component: int) -> None:
        if not 0 <= component < self.components:
            raise ConfigError(f"mode {component} is out of range: this prior has modes "
                             f"0..{self.components - 1}")

    def sample(self, n: int, component: int | None = None,
               generator: torch.Generator | None = None, code_scale: float = 1.0,
               ) -> torch.Tensor:
        """n codes from the whole mixture, or from one component when `component` is given;
        `code_scale` multiplies each component's standard deviation (1: the prior itself)."""
        device = self.means.device
        if component is None:
            chosen = torch.multinomial(self.weights.detach().cpu(), n, replacement=True,
                                       generator=generator).to(device)
        else:
            self.check_component(component)
            chosen = torch.full((n,), component, dtype=torch.long, device=device)
        noise = torch.randn(n, self.dim, generator=generator).to(device)  # (n, D)
        spread = code_scale * self.component_log_scales()[chosen].exp()[:, None]
        return self.means[chosen] + spread * noise

    def sample_weighted(self, n: int, generator: torch.Generator | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """n codes drawn from the components in turn, and weights (n,) that sum to 1.

        A weighted average over these samples estimates an expectation under the prior
        and, unlike `sample`, is differentiable in the mixture weights (and has less variance).
        """
        device = self.means.device
        chosen = torch.arange(n, device=device) % self.components  # (n,)
        counts = torch.bincount(chosen, minlength=self.components).clamp_min(1)  # (K,)
        weights = (self.weights / counts)[chosen]  # (n,)
        noise = torch.randn(n, self.dim, generator=generator).to(device)  # (n, D)
        samples = self.means[chosen] + self.component_log_scales()[chosen].exp()[:, None] * noise
        return samples, weights / weights.sum()  # n < K leaves components out: renormalise

    def component_log_probs(self, z: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(z; mu_k, s_k^2 I) for every code and component: (N, K)."""
        squared = squared_distances(z, self.means)  # (N, K)
        log_scales = self.component_log_scales()  # (K,)
        variances = (2 * log_scales).exp()  # (K,)
        log_normal = -0.5 * (squared / variances + self.dim * (math.log(2 * math.pi)
                                                                + 2 * log_scales))
        return self.weights.log() + log_normal

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.component_log_probs(z).logsumexp(dim=1)  # (N,)

    def standardised_offsets(self, z: torch.Tensor) -> torch.Tensor:
        """Each code (N, D) minus the mean of its assigned component, over that component's
        scale: for the prior's own samples about N(0, I) whatever the component (the
        assignment cuts the tails where modes meet)."""
        chosen = self.assign(z)
        return (z - self.means[chosen]) / self.component_log_scales()[chosen].exp()[:, None]

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """The most likely component of each code: (N,) long."""
        return self.component_log_probs(z).argmax(dim=1)

    def label_loss(self, z: torch.Tensor, components: torch.Tensor | None) -> torch.Tensor | float:
        """Cross-entropy of p(k|z) for codes whose component is known (>= 0); 0 if none is.

        It draws a labelled code into its own component's region; the regulariser keeps
        matching the aggregate of all codes, labelled or not, to the whole mixture.
        """
        if components is None or not (components >= 0).any():
            return 0.0
        known = components >= 0
        return F.cross_entropy(self.component_log_probs(z[known]), components[known])

    def optimizer_groups(self, parameters: list[nn.Parameter],
                         weight_decay: float) -> list[dict]:
        """`parameters` as AdamW groups: this prior's means, scales and weights (when
        learnable) get no weight decay, which would pull the modes towards the origin."""
        own = {id(p) for p in self.parameters()}
        return [{"params": [p for p in parameters if id(p) not in own],
                 "weight_decay": weight_decay},
                {"params": [p for p in parameters if id(p) in own], "weight_decay": 0.0}]

    def mean_squared_distance(self) -> torch.Tensor:
        """E ||a - b||^2 for a, b drawn independently from the prior: the IMQ base scale C.

        2 D E[s^2] from the noise, plus twice the weighted spread of the means.
        """
        w = self.weights
        noise = 2 * self.dim * (w * (2 * self.component_log_scales()).exp()).sum()
        centre = (w[:, None] * self.means).sum(dim=0)
        spread = (w * (self.means - centre).pow(2).sum(dim=1)).sum()
        return noise + 2 * spread

    def penalty(self) -> torch.Tensor | float:
        """The learnable prior's loss term: penalty_weight * sum over pairs of
        relu(margin / ||mu_i - mu_j|| - 1)^2, zero while means keep their margin.

        A fixed prior (or one component) has nothing to guard: 0.
        """
        if not self.learnable or self.components < 2 or self.margin == 0:
            return 0.0
        i, j = torch.triu_indices(self.components, self.components, offset=1,
                                  device=self.means.device)  # pairs i < j
        distances = ((self.means[i] - self.means[j]).pow(2).sum(dim=1) + 1e-12).sqrt()
        return self.penalty_weight * (self.margin / distances - 1).clamp_min(0).pow(2).sum()
