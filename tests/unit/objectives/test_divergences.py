import itertools

import pytest
import torch

from textwae.objectives.divergences import (
    LatentAdversary,
    adversary_loss,
    covariance_divergence,
    encoder_adversarial_loss,
    gaussian_kl,
    mmd,
    squared_distances,
)

D = 4


def _samples(n: int, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=generator) + shift


def _base() -> float:
    return 2.0 * D  # E||a - b||^2 for a, b ~ N(0, I_D)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_of_one_distribution_is_near_zero_and_grows_with_a_shift(kernel):
    prior = _samples(200, seed=1)
    same = mmd(_samples(200, seed=2), prior, _base(), kernel=kernel).item()
    shifted = [mmd(_samples(200, shift, seed=2), prior, _base(), kernel=kernel).item()
               for shift in (0.5, 1.0, 2.0, 4.0)]
    assert abs(same) < 0.1 * shifted[0]  # sampling noise only
    assert all(a < b for a, b in itertools.pairwise(shifted))


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_is_unbiased_around_zero_over_repeats(kernel):
    values = torch.tensor([mmd(_samples(50, seed=2 * i), _samples(50, seed=2 * i + 1), _base(),
                               kernel=kernel).item() for i in range(20)])
    shifted = mmd(_samples(50, 0.5, seed=0), _samples(50, seed=1), _base(), kernel=kernel)
    assert values.mean().abs() < 0.1 * shifted  # some runs negative: the estimate is unbiased
    assert (values < 0).any()


def test_the_base_scale_matters():
    codes, prior = _samples(100, 1.0, seed=3), _samples(100, seed=4)
    narrow, wide = (mmd(codes, prior, base, scales=[1.0], kernel="rbf").item()
                    for base in (0.01, 2.0 * D))
    assert narrow < 0.1 * wide  # a kernel far narrower than the spread sees next to nothing
    assert mmd(codes, prior, torch.tensor(_base())).item() == pytest.approx(
        mmd(codes, prior, _base()).item())


def test_mmd_needs_two_codes_and_two_prior_samples():
    with pytest.raises(ValueError, match="at least two"):
        mmd(_samples(1), _samples(10), _base())
    with pytest.raises(ValueError, match="at least two"):
        mmd(_samples(10), _samples(1), _base())
    with pytest.raises(ValueError, match="unknown kernel"):
        mmd(_samples(10), _samples(10), _base(), kernel="poly")


def test_uniform_prior_weights_give_the_unweighted_estimate():
    codes, prior = _samples(30, 0.5, seed=5), _samples(40, seed=6)
    weights = torch.full((40,), 1 / 40)
    assert mmd(codes, prior, _base(), prior_weights=weights).item() == pytest.approx(
        mmd(codes, prior, _base()).item(), rel=1e-5)


def test_squared_distances_match_cdist_and_have_finite_gradients_at_zero():
    a = _samples(5, seed=7).requires_grad_()
    assert torch.allclose(squared_distances(a, a), torch.cdist(a, a).pow(2), atol=1e-4)
    squared_distances(a, a).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_adversary_losses_favour_the_right_answer():
    confident = adversary_loss(torch.full((8,), 5.0), torch.full((8,), -5.0))
    fooled = adversary_loss(torch.full((8,), -5.0), torch.full((8,), 5.0))
    assert confident < 0.05 < 5 < fooled
    assert encoder_adversarial_loss(torch.full((8,), 5.0)) < encoder_adversarial_loss(
        torch.zeros(8)) < encoder_adversarial_loss(torch.full((8,), -5.0))
    assert LatentAdversary(D, hidden=8, layers=3)(_samples(6)).shape == (6,)


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, D)
    assert torch.allclose(gaussian_kl(zeros, zeros), zeros)
    assert (gaussian_kl(zeros + 1, zeros) > 0).all()


def test_the_covariance_divergence_is_the_gaussian_kl_of_each_eigenvalue():
    """Zero for the prior's own spread, (v - 1 - ln v) / 2 per dimension otherwise, in any
    rotation: a thin direction is seen wherever it points."""
    generator = torch.Generator().manual_seed(0)
    white = torch.randn(20000, D, generator=generator)
    assert covariance_divergence(white).item() == pytest.approx(0.0, abs=2e-3)
    variances = torch.tensor([0.05, 0.5, 1.0, 2.0])
    rotation, _ = torch.linalg.qr(torch.randn(D, D, generator=generator))
    shaped = (white - white.mean(dim=0)) @ torch.linalg.cholesky(torch.cov(white.T)).inverse().T
    offsets = (shaped * variances.sqrt()) @ rotation.T + 3.0  # a shift is not a spread
    expected = (0.5 * (variances - 1 - variances.log())).mean()
    assert covariance_divergence(offsets).item() == pytest.approx(expected.item(), rel=1e-4)


def test_the_covariance_divergence_pushes_codes_out_along_a_thin_direction():
    offsets = _samples(400, seed=7) * torch.tensor([0.1, 1.0, 1.0, 1.0])
    offsets.requires_grad_()
    (gradient,) = torch.autograd.grad(covariance_divergence(offsets), offsets)
    outward = -(gradient * offsets).sum(dim=0)  # descent moves offsets outward where > 0
    assert outward[0] > 0 and outward[0] > 5 * outward[1:].abs().max()


def test_the_covariance_divergence_needs_more_codes_than_dimensions():
    with pytest.raises(ValueError, match="singular"):
        covariance_divergence(_samples(D))
