import math

import pytest
import torch

from textwae.config.schema import PriorConfig
from textwae.objectives.divergences import mmd
from textwae.objectives.priors import MixtureOfGaussians

D = 4


def _prior(**overrides) -> MixtureOfGaussians:
    return MixtureOfGaussians(PriorConfig(**{"components": 3, **overrides}), D)


def test_component_samples_sit_around_their_mean_and_assign_recovers_them():
    prior = _prior()
    generator = torch.Generator().manual_seed(0)
    for k in range(prior.components):
        z = prior.sample(400, component=k, generator=generator)
        assert torch.allclose(z.mean(dim=0), prior.means[k], atol=0.25)
        assert (prior.assign(z) == k).float().mean() > 0.95
    with pytest.raises(ValueError, match="out of range"):
        prior.sample(2, component=3)


def test_mixture_samples_cover_every_component_by_its_weight():
    prior = _prior()
    counts = torch.bincount(prior.assign(prior.sample(3000)), minlength=3).float() / 3000
    assert torch.allclose(counts, prior.weights, atol=0.05)


def test_given_weights_are_normalised_kept_exactly_and_drawn_by():
    prior = _prior(weights=[6.0, 2.0, 2.0])
    assert torch.allclose(prior.weights, torch.tensor([0.6, 0.2, 0.2]))
    counts = torch.bincount(prior.assign(prior.sample(4000)), minlength=3).float() / 4000
    assert torch.allclose(counts, prior.weights, atol=0.04)
    assert torch.allclose(_prior().weights, torch.full((3,), 1 / 3))  # None: equal


def test_a_learnable_prior_starts_at_its_given_weights_above_the_floor():
    prior = _prior(weights=[6.0, 2.0, 2.0], learnable=True, min_weight=0.3)
    assert torch.allclose(prior.weights, torch.tensor([0.6, 0.2, 0.2]), atol=1e-5)
    floored = _prior(weights=[98.0, 1.0, 1.0], learnable=True, min_weight=0.3)
    assert float(floored.weights.detach().min()) >= 0.1 - 1e-6


@pytest.mark.parametrize("weights, message", [([1.0, 1.0], "2 weights for 3 components"),
                                              ([1.0, 0.0, 1.0], r"weights\[1\] must be positive")])
def test_wrong_weights_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        PriorConfig(components=3, weights=weights).check()


@pytest.mark.parametrize("spread, scale", [(0.0, 1.0), (2.0, 0.5)])
def test_log_prob_of_one_component_is_the_gaussian_density(spread, scale):
    prior = _prior(components=1, spread=spread, scale=scale)
    z = torch.randn(10, D)
    mean = torch.zeros(D)
    mean[0] = spread
    by_hand = (-0.5 * ((z - mean) / scale).pow(2) - math.log(scale)
               - 0.5 * math.log(2 * math.pi)).sum(dim=1)
    assert torch.allclose(prior.log_prob(z), by_hand, atol=1e-5)


def test_log_prob_integrates_to_one_in_one_dimension():
    prior = MixtureOfGaussians(PriorConfig(components=2, spread=3.0, scale=0.7), dim=1)
    grid = torch.linspace(-15, 15, 6001)[:, None]  # (N, 1)
    mass = torch.trapezoid(prior.log_prob(grid).exp(), grid[:, 0])
    assert mass.item() == pytest.approx(1.0, abs=1e-4)


def test_mean_squared_distance_matches_a_monte_carlo_estimate():
    prior = _prior(components=4, spread=3.0, scale=0.8)
    torch.manual_seed(0)
    a, b = prior.sample(20000), prior.sample(20000)
    estimate = (a - b).pow(2).sum(dim=1).mean()
    assert prior.mean_squared_distance().item() == pytest.approx(estimate.item(), rel=0.03)


def test_a_fixed_prior_has_no_parameters_and_no_penalty():
    prior = _prior()
    assert list(prior.parameters()) == []
    assert prior.penalty() == 0.0
    assert torch.allclose(prior.weights, torch.full((3,), 1 / 3))
    assert torch.allclose(prior.component_log_scales(), torch.zeros(3))


def test_learnable_and_fixed_priors_share_state_dict_keys():
    fixed, learnable = _prior(), _prior(learnable=True)
    assert set(fixed.state_dict()) == set(learnable.state_dict())
    learnable.load_state_dict(fixed.state_dict())


def test_a_learnable_prior_receives_gradients_through_log_prob_and_mmd():
    prior = _prior(learnable=True)
    codes = torch.randn(16, D)
    (-prior.log_prob(codes).mean()).backward()
    for parameter in (prior.means, prior.log_scales, prior.logits):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    prior.zero_grad()
    samples, weights = prior.sample_weighted(16)
    assert weights.sum().item() == pytest.approx(1.0)
    mmd(codes, samples, prior.mean_squared_distance().detach(), prior_weights=weights).backward()
    for parameter in (prior.means, prior.log_scales, prior.logits):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_learnable_scales_stay_within_their_range():
    prior = _prior(learnable=True, scale=1.0, scale_range=4.0)
    with torch.no_grad():
        prior.log_scales.copy_(torch.tensor([-100.0, 0.0, 100.0]))
    scales = prior.component_log_scales().exp()
    assert scales.min() >= 0.25 and scales.max() <= 4.0
    assert scales[1].item() == pytest.approx(1.0)


def _collapse(**overrides) -> MixtureOfGaussians:
    """Train a learnable prior against codes from one tight cluster, plus explicit pulls of
    the weight onto component 0 and of the means together: every force favours collapse."""
    torch.manual_seed(0)
    prior = MixtureOfGaussians(PriorConfig(components=4, learnable=True, **overrides), D)
    optimizer = torch.optim.Adam(prior.parameters(), lr=0.05)
    codes = 0.3 * torch.randn(48, D) + torch.tensor([1.0, 0.0, 0.0, 0.0])
    for _ in range(150):
        samples, weights = prior.sample_weighted(48)
        loss = (mmd(codes, samples, prior.mean_squared_distance().detach(),
                    prior_weights=weights)
                - prior.weights[0].log()
                + 0.1 * (prior.means - prior.means.mean(dim=0)).pow(2).sum()
                + prior.penalty())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return prior


@pytest.mark.slow
def test_safeguards_keep_weights_above_the_floor_and_means_apart():
    prior = _collapse(min_weight=0.2, min_separation=0.5)
    with torch.no_grad():
        assert prior.weights.min() >= 0.2 / 4 - 1e-6
        assert torch.pdist(prior.means).min() > 0.75 * prior.margin
        assert prior.margin == pytest.approx(0.5 * 4.0 * math.sqrt(2))
    unguarded = _collapse(min_weight=0.0, penalty_weight=0.0)
    with torch.no_grad():  # the same forces collapse a prior without safeguards
        assert unguarded.weights.min() < 0.02
        assert torch.pdist(unguarded.means).min() < 0.25 * prior.margin


def test_code_scale_multiplies_each_samples_distance_from_its_mean():
    prior = _prior(scale=2.0)
    full = prior.sample(50, component=1, generator=torch.Generator().manual_seed(3))
    half = prior.sample(50, component=1, generator=torch.Generator().manual_seed(3),
                        code_scale=0.5)
    mean = prior.means[1]
    torch.testing.assert_close(half - mean, 0.5 * (full - mean))
    at_mean = prior.sample(4, component=2, code_scale=0.0)
    torch.testing.assert_close(at_mean, prior.means[2].expand(4, D))


def test_standardised_offsets_measure_each_code_from_its_own_component_in_its_scale():
    prior = _prior(scale=2.0)
    noise = torch.randn(300, D, generator=torch.Generator().manual_seed(0)) * 0.25
    components = torch.arange(300) % prior.components
    z = prior.means[components] + 2.0 * noise  # near their own means: assigned to them
    assert torch.equal(prior.assign(z), components)
    assert torch.allclose(prior.standardised_offsets(z), noise, atol=1e-5)
