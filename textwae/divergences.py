"""Divergences between the aggregate posterior Q_Z and the prior P_Z: pure functions of codes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

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
        scales: Sequence[float] = DEFAULT_SCALES, kernel: str = "imq") -> torch.Tensor:
    """Unbiased estimate of MMD^2 between codes (N, D) and prior samples (M, D).

    The kernel is summed over `scales` times the base C, the mean squared distance between
    two prior samples, so one setting serves any latent size and prior spread.
    """
    if encoded.shape[0] < 2 or prior.shape[0] < 2:
        raise ValueError("mmd needs at least two codes and two prior samples")
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _multiscale(squared_distances(a, b), base, scales, kernel)

    return (
        _mean_off_diagonal(similarity(encoded, encoded))
        + _mean_off_diagonal(similarity(prior, prior))
        - 2 * similarity(encoded, prior).mean()
    )
