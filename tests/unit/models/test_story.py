"""The story level: next-code mixtures, story batches, the story model's loss and paths."""

import math

import pytest
import torch

from tests.conftest import TINY, assert_label_mmd_joins_the_training_loss
from textwae.config.loading import load_config
from textwae.errors import ConfigError
from textwae.models.story import CodeMixture, StoryCodes, StoryModel

D = TINY["model"]["latent_dim"]


@pytest.fixture
def story_model() -> StoryModel:
    torch.manual_seed(0)
    return StoryModel(load_config(TINY, overrides=[
        "story.enabled=true", "story.hidden_size=16", "story.latent_dim=3",
        "story.code_mixtures=2"]))


def stories(n: int = 12, seed: int = 0) -> StoryCodes:
    generator = torch.Generator().manual_seed(seed)
    lengths = [1 + i % 4 for i in range(n)]
    return StoryCodes([torch.randn(s, D, generator=generator) for s in lengths],
                      components=torch.tensor([i % 3 - (i % 5 == 0) for i in range(n)]))


def test_a_one_component_mixture_is_a_diagonal_gaussian():
    means, stds = torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 0.5]])
    mixture = CodeMixture(torch.zeros(1, 1), means[:, None], stds[:, None])
    target = torch.tensor([[1.0, 0.0]])
    expected = -torch.distributions.Normal(means, stds).log_prob(target).sum(dim=-1)
    torch.testing.assert_close(mixture.nll(target), expected)


def test_mixture_weights_decide_the_likely_code_and_the_samples():
    means = torch.tensor([[[-5.0], [5.0]]])  # (1, K=2, D=1)
    mixture = CodeMixture(torch.tensor([[0.0, 3.0]]), means, torch.full((1, 2, 1), 0.1))
    assert mixture.most_likely().item() == 5.0
    draws = torch.cat([mixture.sample(1.0, torch.Generator().manual_seed(seed))
                       for seed in range(200)])
    heavy = (draws > 0).float().mean().item()
    assert 0.9 < heavy < 1.0  # weight e^3 / (1 + e^3) = 0.95 on the second component
    assert (mixture.nll(torch.tensor([[5.0]])) < mixture.nll(torch.tensor([[-5.0]]))).all()
    cold = mixture.sample(1e-3, torch.Generator().manual_seed(0))
    assert abs(abs(cold.item()) - 5.0) < 0.01  # temperature scales the spread only


def test_story_batches_pad_to_the_longest_story_and_keep_components():
    data = stories()
    batch = data.batch([0, 3, 5])  # lengths 1, 4, 2
    assert batch.codes.shape == (3, 4, D)
    assert batch.lengths.tolist() == [1, 4, 2]
    assert batch.mask.sum(dim=1).tolist() == [1, 4, 2]
    torch.testing.assert_close(batch.codes[1], data.codes[3])
    assert (batch.codes[0, 1:] == 0).all()
    assert batch.components.tolist() == data.components[[0, 3, 5]].tolist()


def test_padding_does_not_change_a_story_code(story_model):
    data = stories()
    story_model.eval()
    alone, padded = data.batch([2]), data.batch([2, 3])  # story 3 is longer
    torch.testing.assert_close(story_model.encode(alone.codes, alone.lengths).z[0],
                               story_model.encode(padded.codes, padded.lengths).z[0])


def test_training_steps_lower_the_code_nll_and_the_loss_terms_are_finite(story_model):
    data = stories()
    batch = data.batch(list(range(len(data))))
    optimizer = torch.optim.Adam(story_model.model_parameters(), lr=0.01)
    story_model.train()
    first = story_model(batch, batch.components)
    assert all(math.isfinite(float(torch.as_tensor(term).detach())) for term in
               (first.loss, first.recon, first.reg, first.label, first.stop))
    for _ in range(60):
        optimizer.zero_grad()
        story_model(batch, batch.components).loss.backward()
        optimizer.step()
    story_model.eval()
    after = story_model(batch, batch.components)
    assert after.code_nll < first.code_nll - 0.3
    assert after.stop < first.stop  # it learns where these stories end


def test_paths_end_where_the_end_logit_says_and_never_pass_the_limit(story_model):
    z = torch.randn(5, 3)
    with torch.no_grad():
        story_model.head.bias[-1] = 20.0  # "the story ends here" at every step
    assert [len(path) for path in story_model.generate_codes(z, 6)] == [1] * 5
    with torch.no_grad():
        story_model.head.bias[-1] = -20.0
    paths = story_model.generate_codes(z, 6, temperature=1.0,
                                       generator=torch.Generator().manual_seed(0))
    assert [tuple(path.shape) for path in paths] == [(6, D)] * 5
    with pytest.raises(ConfigError, match="at least 1 sentence"):
        story_model.generate_codes(z, 0)


def test_greedy_paths_are_deterministic_and_sampled_ones_follow_the_seed(story_model):
    z = torch.randn(4, 3)
    first, again = story_model.generate_codes(z, 5), story_model.generate_codes(z, 5)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))

    def sampled(seed):
        return story_model.generate_codes(z, 5, 1.0, torch.Generator().manual_seed(seed))
    assert all(torch.equal(a, b) for a, b in zip(sampled(1), sampled(1), strict=True))
    assert not all(a.shape == b.shape and torch.equal(a, b)
                   for a, b in zip(sampled(1), sampled(2), strict=True))


def test_a_story_level_needs_sentence_units_read_whole():
    for override in ("data.unit=story", "data.streaming=true"):
        with pytest.raises(ConfigError, match=r"story\.enabled"):
            load_config(TINY, overrides=["story.enabled=true", override])
    with pytest.raises(ConfigError, match=r"story\.hidden_size must be even"):
        load_config(TINY, overrides=["story.hidden_size=15"])


def test_label_mmd_joins_the_story_levels_training_loss_with_its_weight(story_model,
                                                                        monkeypatch):
    batch = stories().batch(list(range(12)))
    assert_label_mmd_joins_the_training_loss(
        story_model, lambda: story_model(batch, batch.components), batch.components,
        monkeypatch)
