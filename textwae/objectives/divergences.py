"""Divergences between the aggregate posterior Q_Z and the prior P_Z: pure functions of codes.

MMD with IMQ / RBF kernels (WAE-MMD), a latent discriminator and its two losses (WAE-GAN), the
KL of a Gaussian posterior to the prior, closed form or Monte Carlo (the VAE baseline), and a
covariance match that sees each latent direction's spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def imq_kernel(squared_distances: torch.Tensor, c: torch.Tensor | float) -> torch.Tensor:
    """Inverse multiquadratic C / (C + ||a-b||^2): heavy tails keep gradients for far codes."""
    return c / (c + squared_distances)


def rbf_kernel(squared_distances: torch.Tensor, c: torch.Tensor | float) -> torch.Tensor:
    """Gaussian exp(-||a-b||^2 / C)."""
    return torch.exp(-squared_distances / c)


KERNELS = {"imq": imq_kernel, "rbf": rbf_kernel}


def _multiscale(squared: torch.Tensor, base: torch.Tensor | float, scales: Sequence[float],
                kernel: str) -> torch.Tensor:
    function = KERNELS[kernel]
    return sum(function(squared, base * scale) for scale in scales)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 as one matmul; unlike cdist, its gradient is finite at zero distance."""
    a_norms = a.pow(2).sum(dim=1, keepdim=True)  # (N, 1)
    b_norms = b.pow(2).sum(dim=1)  # (M,)
    return (a_norms + b_norms - 2 * a @ b.T).clamp_min(0)  # (N, M)


def _mean_off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    n = matrix.shape[0]
    return (matrix.sum() - matrix.diagonal().sum()) / (n * (n - 1))


def mmd(encoded: torch.Tensor, prior: torch.Tensor, base: torch.Tensor | float,
        scales: Sequence[float] = DEFAULT_SCALES, kernel: str = "imq",
        prior_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Unbiased estimate of MMD^2 between codes (N, D) and prior samples (M, D).

    The kernel is summed over `scales` times the base C, the mean squared distance between
    two prior samples, so one setting serves any latent size and prior spread.
    `prior_weights` (M,), summing to 1, weight the prior samples (stratified samples of a
    learnable mixture, so that the estimate is differentiable in the mixture weights).
    """
    if encoded.shape[0] < 2 or prior.shape[0] < 2:
        raise ValueError("mmd needs at least two codes and two prior samples")
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _multiscale(squared_distances(a, b), base, scales, kernel)

    if prior_weights is None:
        return (
            _mean_off_diagonal(similarity(encoded, encoded))
            + _mean_off_diagonal(similarity(prior, prior))
            - 2 * similarity(encoded, prior).mean()
        )
    a = prior_weights.to(prior.dtype)  # (M,)
    prior_kernel = similarity(prior, prior)  # (M, M)
    off_diagonal = a @ prior_kernel @ a - (a * a * prior_kernel.diagonal()).sum()
    return (
        _mean_off_diagonal(similarity(encoded, encoded))
        + off_diagonal / (1 - (a * a).sum())  # sum_{i != j} a_i a_j k_ij, normalised
        - 2 * (similarity(encoded, prior) @ a).mean()
    )


# -- WAE-GAN -------------------------------------------------------------------------------


class LatentAdversary(nn.Module):
    """MLP discriminator on codes: a logit, high for prior samples and low for encoded codes."""

    def __init__(self, latent_dim: int, hidden: int = 256, layers: int = 2) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for layer in range(layers):
            blocks += [nn.Linear(latent_dim if layer == 0 else hidden, hidden), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)  # (N, D) -> (N,)


def adversary_loss(prior_logits: torch.Tensor, code_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss: binary cross-entropy, prior samples real, codes fake."""
    real = F.binary_cross_entropy_with_logits(prior_logits, torch.ones_like(prior_logits))
    fake = F.binary_cross_entropy_with_logits(code_logits, torch.zeros_like(code_logits))
    return real + fake


def encoder_adversarial_loss(code_logits: torch.Tensor) -> torch.Tensor:
    """The encoder's non-saturating term -log D(z): codes should pass for prior samples."""
    return F.softplus(-code_logits).mean()


def prior_adversarial_loss(prior_logits: torch.Tensor,
                           weights: torch.Tensor | None = None) -> torch.Tensor:
    """A learnable prior's non-saturating term -log(1 - D(y)): samples should pass for codes."""
    losses = F.softplus(prior_logits)  # (M,)
    return losses.mean() if weights is None else (losses * weights).sum()


def covariance_divergence(offsets: torch.Tensor) -> torch.Tensor:
    """KL(N(0, C) || N(0, I)) per dimension, C the covariance of `offsets` (N, D): codes
    measured from their own prior component's mean in its scale, so the prior's C is I.

    Each eigenvalue v of C costs (v - 1 - ln v) / 2: zero at 1, and without bound as a
    direction thins (v -> 0), where an MMD over a few thousand codes in 64 dimensions sees
    almost nothing (measured by `thin_directions`). N must exceed D, or C is singular.
    """
    n, dim = offsets.shape
    if n <= dim:
        raise ValueError(f"the covariance of {n} codes in {dim} dimensions is singular: "
                         f"give more codes than dimensions")
    centred = offsets - offsets.mean(dim=0)
    covariance = centred.T @ centred / (n - 1)  # (D, D)
    log_det = torch.linalg.slogdet(covariance.double()).logabsdet.to(offsets.dtype)
    return 0.5 * (covariance.diagonal().sum() - dim - log_det) / dim


# -- VAE: KL(q(z|x) || p(z)) -----------------------------------------------------------------


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor,
                prior_mean: torch.Tensor | float = 0.0,
                prior_log_scale: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Closed-form KL(N(mean, exp(logvar)) || N(prior_mean, exp(prior_log_scale)^2)) per
    dimension: (B, D). The defaults are the standard normal."""
    prior_log_scale = torch.as_tensor(prior_log_scale, dtype=mean.dtype, device=mean.device)
    prior_var = (2 * prior_log_scale).exp()
    return 0.5 * (2 * prior_log_scale - logvar
                  + (logvar.exp() + (mean - prior_mean).pow(2)) / prior_var - 1)


def diagonal_gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor,
                               logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag exp(logvar)), summed over dimensions: (B,)."""
    return -0.5 * ((z - mean).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(dim=-1)


def kl_closed_form(mean: torch.Tensor, logvar: torch.Tensor,
                   prior_mean: torch.Tensor | float = 0.0,
                   prior_log_scale: torch.Tensor | float = 0.0,
                   free_bits: float = 0.0) -> torch.Tensor:
    """Batch-mean KL to one isotropic Gaussian, summed over dimensions.

    Free bits: each dimension's batch-mean KL counts as at least `free_bits` nats, so the
    optimiser gains nothing by pushing a dimension below that (Kingma et al., 2016).
    """
    per_dimension = gaussian_kl(mean, logvar, prior_mean, prior_log_scale).mean(dim=0)  # (D,)
    return per_dimension.clamp_min(free_bits).sum()


def kl_monte_carlo(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                   prior_log_prob: torch.Tensor, free_bits: float = 0.0) -> torch.Tensor:
    """One-sample estimate of KL(q(z|x) || p(z)) = E_q[log q(z|x) - log p(z)], batch mean.

    `z` must be the reparameterised sample and `prior_log_prob` (B,) log p(z) of it. Without
    per-dimension terms, free bits floor the total at `free_bits * D`.
    """
    estimate = (diagonal_gaussian_log_prob(z, mean, logvar) - prior_log_prob).mean()
    return estimate.clamp_min(free_bits * z.shape[-1])
