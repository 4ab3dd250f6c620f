import itertools

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tests.conftest import REPO, TINY, TINY_TRANSFORMER
from textwae import generation
from textwae.config.loading import load_config
from textwae.config.schema import PriorConfig, RegularizerConfig
from textwae.errors import ConfigError
from textwae.models.autoencoder import TextWAE
from textwae.objectives.codes import LatentOutput
from textwae.objectives.divergences import (
    LatentAdversary,
    covariance_divergence,
    kl_closed_form,
    kl_monte_carlo,
    mmd,
)
from textwae.objectives.priors import MixtureOfGaussians
from textwae.objectives.regularizers import (
    AdversarialRegularizer,
    AdversaryUpdate,
    CodeMemory,
    KLAnnealing,
    KLRegularizer,
    MMDRegularizer,
    label_mmd,
    mmd_with_memory,
    recentred,
)
from textwae.runs.checkpoint import STATE_FILE, load_state, save_state
from textwae.training.pipeline import train
from textwae.training.trainer import Trainer

PARTS = ["gru", "transformer"]

D = 4


def _posterior(batch: int = 8, seed: int = 0) -> LatentOutput:
    generator = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, D, generator=generator)
    logvar = 0.5 * torch.randn(batch, D, generator=generator)
    z = mean + (0.5 * logvar).exp() * torch.randn(batch, D, generator=generator)
    return LatentOutput(z=z, mean=mean, logvar=logvar)


def _prior(**overrides) -> MixtureOfGaussians:
    return MixtureOfGaussians(PriorConfig(**{"components": 4, **overrides}), D)


# -- WAE-MMD with a memory of recent codes ------------------------------------------------


def _codes(n: int, seed: int) -> LatentOutput:
    z = torch.randn(n, D, generator=torch.Generator().manual_seed(seed)).requires_grad_()
    return LatentOutput(z=z, mean=z)


def test_the_memory_keeps_the_newest_codes_first_in_first_out_and_detached():
    regularizer = MMDRegularizer(RegularizerConfig(code_memory=20), D).train()
    batches = [_codes(8, seed) for seed in range(4)]
    for number, latent in enumerate(batches, start=1):
        regularizer(latent, _prior())
        assert regularizer.memory.shape == (min(8 * number, 20), D)
    assert not regularizer.memory.requires_grad
    newest_first = torch.cat([b.z for b in reversed(batches)]).detach()[:20]
    torch.testing.assert_close(regularizer.memory, newest_first)


def test_the_memory_is_read_and_kept_in_training_only():
    regularizer = MMDRegularizer(RegularizerConfig(code_memory=20), D).train()
    regularizer(_codes(8, 0), _prior())
    kept = regularizer.memory.clone()
    regularizer.eval()
    regularizer(_codes(8, 1), _prior())
    torch.testing.assert_close(regularizer.memory, kept)


def test_only_the_batch_carries_gradients_each_pulled_as_by_the_batch_alone():
    """Value: the MMD of batch + memory; gradient: that estimate's, times (N + M) / N."""
    torch.manual_seed(0)
    cfg = RegularizerConfig()
    z = torch.randn(16, D, requires_grad=True)
    memory = torch.randn(48, D) + 0.5
    samples = _prior().sample(64)
    full = mmd(torch.cat([z, memory]), samples, 2.0, cfg.scales, cfg.kernel)
    exact = mmd_with_memory(z, memory, samples, 2.0, cfg, constant_rows=1000)
    torch.testing.assert_close(exact, full)
    (expected,), (got,) = (torch.autograd.grad(v, z) for v in (full, exact))
    torch.testing.assert_close(got, expected * 64 / 16)
    cheap = mmd_with_memory(z, memory, samples, 2.0, cfg, constant_rows=8)
    torch.testing.assert_close(torch.autograd.grad(cheap, z)[0], got)  # constants only differ
    assert abs(cheap.item() - full.item()) < 0.5 * abs(full.item()) + 0.05


def test_the_memory_pulls_new_codes_into_the_holes_the_old_ones_leave():
    """Old codes crowd one half of the prior: the new batch is pushed towards the other."""
    torch.manual_seed(0)
    prior = _prior(components=1, spread=0.0)
    memory = prior.sample(400)
    memory = memory[memory[:, 0] > 0]  # (M, D): only the half with a positive first coordinate
    z = torch.zeros(16, D, requires_grad=True)
    value = mmd_with_memory(z, memory, prior.sample(800), 2.0, RegularizerConfig())
    (gradient,) = torch.autograd.grad(value, z)
    assert (-gradient[:, 0]).mean() < 0  # descent moves z towards negative x_0


def test_a_memory_off_to_one_side_does_not_push_the_batch_away():
    """Recentred on the batch, the memory gives the same gradient wherever the old codes
    were: a cloud of codes is never repelled by its own past positions."""
    torch.manual_seed(0)
    regularizer = MMDRegularizer(RegularizerConfig(code_memory=64), D).train()
    old = 0.1 * torch.randn(48, D)
    gradients = []
    for shift in (0.0, 3.0):
        regularizer.memory = old + shift
        latent = _codes(16, 0)
        torch.manual_seed(1)  # the same prior samples
        gradients.append(torch.autograd.grad(regularizer(latent, _prior()), latent.z)[0])
    torch.testing.assert_close(gradients[0], gradients[1])
    recentred_mean = recentred(old + 3.0, latent.z.detach()).mean(dim=0)
    torch.testing.assert_close(recentred_mean, latent.z.detach().mean(dim=0))


def test_the_memory_is_saved_and_restored_for_a_resume(tmp_path):
    regularizer = MMDRegularizer(RegularizerConfig(code_memory=12), D).train()
    hook = CodeMemory(regularizer)
    save_state(tmp_path / "empty.safetensors", {"callbacks": [hook.state_dict()]})
    assert load_state(tmp_path / "empty.safetensors")["callbacks"][0]["codes"].shape == (0, D)
    regularizer(_codes(8, 0), _prior())
    regularizer(_codes(8, 1), _prior())
    save_state(tmp_path / "state.safetensors", {"callbacks": [hook.state_dict()]})
    restored = MMDRegularizer(RegularizerConfig(code_memory=12), D)
    CodeMemory(restored).load_state_dict(
        load_state(tmp_path / "state.safetensors")["callbacks"][0])
    torch.testing.assert_close(restored.memory, regularizer.memory)
    assert regularizer.step_hooks(_prior())[0].regularizer is regularizer
    assert MMDRegularizer(RegularizerConfig(), D).step_hooks(_prior()) == []


def test_the_spread_term_joins_the_mmd_while_training_with_the_memory():
    """Training adds spread_weight x the covariance divergence of the batch and the memory's
    offsets, its gradient read by the batch alone as the MMD's is; evaluation leaves it out."""
    prior = _prior(components=1, spread=0.0)
    plain = MMDRegularizer(RegularizerConfig(code_memory=48), D).train()
    spread = MMDRegularizer(RegularizerConfig(code_memory=48, spread_weight=2.0), D).train()
    old = torch.randn(48, D, generator=torch.Generator().manual_seed(3)) * 0.2
    plain.memory, spread.memory = old.clone(), old.clone()
    latent = _codes(16, 0)
    torch.manual_seed(1)
    without = plain(latent, prior)
    torch.manual_seed(1)
    with_spread = spread(latent, prior)
    codes = torch.cat([latent.z, old])
    divergence = covariance_divergence(codes)
    torch.testing.assert_close(with_spread - without, 2.0 * divergence)
    (gap,) = torch.autograd.grad(with_spread - without, latent.z)
    (expected,) = torch.autograd.grad(2.0 * divergence, latent.z)
    torch.testing.assert_close(gap, expected * 64 / 16)
    spread.eval(), plain.eval()
    torch.manual_seed(1)
    evaluated = spread(latent, prior)
    torch.manual_seed(1)
    torch.testing.assert_close(evaluated, plain(latent, prior))


def test_the_spread_term_waits_for_ten_codes_per_dimension():
    """An empty memory's first steps would estimate a D x D covariance from one batch."""
    spread = MMDRegularizer(RegularizerConfig(code_memory=48, spread_weight=2.0), D).train()
    plain = MMDRegularizer(RegularizerConfig(code_memory=48), D).train()
    values = []
    for regularizer in (spread, plain):
        torch.manual_seed(1)
        values.append([regularizer(_codes(16, seed), _prior()).item() for seed in range(3)])
    assert values[0][:2] == values[1][:2]  # 16, then 32 codes: fewer than 10 x 4
    assert values[0][2] > values[1][2]  # 48 codes


@pytest.mark.parametrize("overrides, message", [
    (["regularizer.spread_weight=-1"], "spread_weight"),
    (["regularizer.spread_weight=1", "model.regularizer=gan"], "joins the MMD"),
    (["regularizer.spread_weight=1", "model.latent_dim=64", "train.batch_size=64"], "640"),
    (["regularizer.spread_weight=1", "model.latent_dim=64", "regularizer.code_memory=512",
      "train.batch_size=64"], "give 576")])
def test_a_spread_term_without_the_codes_to_estimate_it_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides).check()


def test_a_spread_term_with_ten_codes_per_dimension_a_step_is_accepted():
    load_config(overrides=["regularizer.spread_weight=1", "model.latent_dim=64",
                           "regularizer.code_memory=576"]).check()


# -- each label's codes against its own mode ---------------------------------------------------


def test_label_mmd_weighs_each_labels_mmd_to_its_own_mode_by_its_share_of_the_batch():
    prior = _prior(components=3)
    z = prior.sample(12)
    components = torch.tensor([0] * 6 + [2] * 4 + [1] + [-1])  # label 1: one code, skipped
    torch.manual_seed(0)
    value = label_mmd(z, components, prior, RegularizerConfig())
    torch.manual_seed(0)
    base = prior.mean_squared_distance()
    expected = (6 / 12 * mmd(z[:6], prior.sample(6, component=0), base)
                + 4 / 12 * mmd(z[6:10], prior.sample(4, component=2), base))
    torch.testing.assert_close(value, expected)
    assert label_mmd(z, None, prior, RegularizerConfig()) == 0.0
    assert label_mmd(z, torch.full((12,), -1), prior, RegularizerConfig()) == 0.0


def test_label_mmd_matches_labels_to_modes_where_the_aggregate_mmd_cannot():
    """Codes of each label drawn from the other label's mode: together they are the mixture
    (the aggregate MMD is near zero), each label alone is far from its own mode."""
    torch.manual_seed(0)
    prior = _prior(components=2)
    components = torch.tensor([0] * 200 + [1] * 200)
    own = torch.cat([prior.sample(200, component=0), prior.sample(200, component=1)])
    swapped = own.roll(200, dims=0)
    cfg = RegularizerConfig()
    base = prior.mean_squared_distance()
    aggregate = mmd(swapped, prior.sample(400), base).item()
    by_label = [label_mmd(codes, components, prior, cfg).item() for codes in (own, swapped)]
    assert by_label[1] > 20 * max(abs(by_label[0]), abs(aggregate), 1e-3)


@pytest.mark.parametrize("override", ["regularizer.code_memory=-1",
                                      "regularizer.label_mmd_weight=-1",
                                      "regularizer.prior_samples=1", "model.z_noise=-0.1",
                                      "model.encoder_word_drop=1.0", "model.encoder_blank=-0.1",
                                      "model.encoder_shuffle=-1"])
def test_meaningless_noise_and_memory_settings_raise(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        load_config(overrides=[override]).check()


# -- WAE-GAN -------------------------------------------------------------------------------


def test_the_discriminator_loss_falls_when_it_trains_alone():
    torch.manual_seed(0)
    prior = _prior(components=3)
    update = AdversaryUpdate(LatentAdversary(D, hidden=32, layers=2), prior, lr=1e-2)
    codes = 0.5 * torch.randn(64, D) + 1.0  # fixed codes, off the prior
    losses = [update.step(codes, prior.sample(64)) for _ in range(40)]
    assert losses[0] > 1.0  # about 2 log 2 untrained
    assert sum(losses[-10:]) / 10 < 0.5 * losses[0]


def test_the_encoder_term_drops_the_gradients_it_leaves_on_the_discriminator():
    regularizer = AdversarialRegularizer(RegularizerConfig(adversary_hidden=8), D)
    latent = _posterior()
    latent.z.requires_grad_()
    regularizer(latent, _prior()).backward()
    assert latent.z.grad is not None
    (update,) = regularizer.step_hooks(_prior())
    before = [p.detach().clone() for p in regularizer.adversary.parameters()]
    update.step(latent.z.detach(), _prior().sample(8))
    assert all(not torch.equal(a, b) for a, b in zip(before, regularizer.adversary.parameters(),
                                                      strict=True))
    state = update.state_dict()
    fresh = regularizer.step_hooks(_prior())[0]
    fresh.load_state_dict(state)
    assert fresh.optimizer.state_dict()["state"][0]["step"] == 1


# -- VAE: KL ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spread, scale", [(0.0, 1.0), (2.0, 0.5)])
def test_closed_form_kl_equals_torch_for_one_gaussian(spread, scale):
    latent, prior = _posterior(), _prior(components=1, spread=spread, scale=scale)
    ours = KLRegularizer(RegularizerConfig(), D)(latent, prior)
    posterior = Normal(latent.mean, (0.5 * latent.logvar).exp())
    reference = kl_divergence(posterior, Normal(prior.means[0], scale)).sum(dim=1).mean()
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


def test_monte_carlo_kl_approximates_the_closed_form():
    prior = _prior(components=1, spread=0.0)
    one = _posterior(batch=1, seed=3)
    n = 20000
    mean, logvar = one.mean.expand(n, D), one.logvar.expand(n, D)
    z = mean + (0.5 * logvar).exp() * torch.randn(n, D)
    estimate = kl_monte_carlo(z, mean, logvar, prior.log_prob(z))
    assert estimate.item() == pytest.approx(kl_closed_form(mean, logvar).item(), abs=0.05)


def test_a_mixture_prior_uses_the_monte_carlo_estimate():
    latent, prior = _posterior(), _prior(components=3)
    ours = KLRegularizer(RegularizerConfig(), D)(latent, prior)
    expected = kl_monte_carlo(latent.z, latent.mean, latent.logvar, prior.log_prob(latent.z))
    assert ours.item() == pytest.approx(expected.item())


def test_free_bits_floor_each_dimension_in_closed_form_and_the_total_otherwise():
    mean = torch.zeros(4, D, requires_grad=True)
    mean_far = torch.zeros(4, D)
    mean_far[:, 0] = 3.0  # KL 4.5 nats in dimension 0, none elsewhere
    logvar = torch.zeros(4, D)
    assert kl_closed_form(mean_far, logvar).item() == pytest.approx(4.5)
    assert kl_closed_form(mean_far, logvar, free_bits=0.5).item() == pytest.approx(4.5 + 1.5)
    floored = kl_closed_form(mean, logvar, free_bits=0.5)
    floored.backward()
    assert floored.item() == pytest.approx(0.5 * D)
    assert mean.grad.abs().sum() == 0  # below the floor the KL is free: no gradient
    z = torch.zeros(4, D)
    total = kl_monte_carlo(z, z, logvar, MixtureOfGaussians(PriorConfig(components=1, spread=0),
                                                            D).log_prob(z), free_bits=0.5)
    assert total.item() == pytest.approx(0.5 * D)


def test_kl_annealing_raises_the_weight_from_0_to_1_and_resumes():
    annealed = RegularizerConfig(kl_anneal_steps=4)
    regularizer = KLRegularizer(annealed, D)
    assert regularizer.anneal == 1.0  # outside training: the full KL
    (annealing,) = regularizer.step_hooks(_prior())
    assert isinstance(annealing, KLAnnealing)
    weights = [regularizer.anneal]
    for step in range(6):
        annealing.after_step(step, _posterior())
        weights.append(regularizer.anneal)
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    latent, prior = _posterior(), _prior(components=1, spread=0.0)
    regularizer.anneal = 0.25
    full = kl_closed_form(latent.mean, latent.logvar)
    assert regularizer(latent, prior).item() == pytest.approx(0.25 * full.item())
    other = KLRegularizer(annealed, D)
    other.step_hooks(_prior())[0].load_state_dict(annealing.state_dict())
    assert other.anneal == 0.25
    assert KLRegularizer(RegularizerConfig(), D).step_hooks(_prior()) == []


def test_the_kl_needs_a_gaussian_latent():
    z = torch.randn(4, D)
    with pytest.raises(ValueError, match="Gaussian latent"):
        KLRegularizer(RegularizerConfig(), D)(LatentOutput(z=z, mean=z), _prior())


# -- combinations ------------------------------------------------------------------------

VALID = [("deterministic", "mmd"), ("deterministic", "gan"), ("gaussian", "mmd"),
         ("gaussian", "gan"), ("gaussian", "kl")]


def test_exactly_the_valid_latent_regularizer_pairs_are_accepted():
    for latent, regularizer in VALID:
        load_config(overrides=[f"model.latent={latent}", f"model.regularizer={regularizer}"])
    with pytest.raises(ConfigError, match=r"needs model\.latent=gaussian"):
        load_config(overrides=["model.regularizer=kl"])  # deterministic + kl


@pytest.mark.parametrize("override", ["regularizer.adversary_lr=0", "regularizer.free_bits=-1",
                                      "regularizer.kl_anneal_steps=-1", "prior.min_weight=1",
                                      "prior.scale_range=1", "prior.min_separation=-0.1",
                                      "model.regularizer=wgan"])
def test_meaningless_regularizer_and_prior_settings_raise(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_config(overrides=[override])


# (latent, regularizer) -> shipped config and extra overrides; two learn their prior
RUNS = {
    ("deterministic", "mmd"): (None, ["prior.learnable=true"]),
    ("deterministic", "gan"): ("wae_gan.yaml", []),
    ("gaussian", "mmd"): ("gaussian_mmd.yaml", []),
    ("gaussian", "gan"): ("wae_gan.yaml", ["model.latent=gaussian", "prior.learnable=true"]),
    ("gaussian", "kl"): ("vae_kl.yaml", ["regularizer.kl_anneal_steps=3"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("encoder, decoder", list(itertools.product(PARTS, PARTS)))
@pytest.mark.parametrize("latent, regularizer", VALID)
def test_every_combination_trains_saves_loads_and_generates(encoder, decoder, latent,
                                                            regularizer, corpus, tmp_path):
    shipped, overrides = RUNS[(latent, regularizer)]
    sources = [TINY, TINY_TRANSFORMER] + ([REPO / "configs" / shipped] if shipped else [])
    config = load_config(*sources, overrides=[
        f"data.train={corpus}", f"model.encoder={encoder}", f"model.decoder={decoder}",
        *overrides])
    assert (config.model.latent, config.model.regularizer) == (latent, regularizer)
    run = tmp_path / "run"
    metrics = train(config, run)
    assert all(torch.isfinite(torch.tensor(value)) for value in metrics.values())
    model = TextWAE.from_pretrained(run)
    assert (model.config.model.latent, model.config.model.regularizer) == (latent, regularizer)
    state = load_state(run / STATE_FILE)
    assert state["progress"]["step"] == config.train.max_steps
    if regularizer == "gan":  # the discriminator took one step per model step
        adversary_state = state["callbacks"][0]["optimizer"]["state"]
        assert int(adversary_state[0]["step"]) == config.train.max_steps
    if regularizer == "kl":
        assert state["callbacks"][0]["anneal"] == 1.0
        assert model.regularizer.anneal == 1.0
    if config.prior.learnable:
        assert not torch.equal(state["model"]["prior.means"],
                               TextWAE(config, model.tokenizer).prior.means.detach())
    texts, modes = generation.sample(model, 2, generation.DecodingConfig(max_length=4))
    assert len(texts) == 2 and all(0 <= mode < config.prior.components for mode in modes)
    rebuilt, _ = generation.reconstruct(model, ["anna went to the park ."],
                                        generation.DecodingConfig(greedy=True, max_length=4))
    assert len(rebuilt) == 1


@pytest.mark.slow
# mmd: a memory that fills (8 codes a step) and wraps before the stop, and every noise on
@pytest.mark.parametrize("regularizer, extra", [
    ("gan", []), ("kl", []),
    ("mmd", ["regularizer.code_memory=12", "model.encoder_word_drop=0.2",
             "model.encoder_blank=0.1", "model.encoder_shuffle=2", "model.z_noise=0.3"])],
    ids=["gan", "kl", "mmd-memory-noise"])
def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(regularizer, extra, corpus,
                                                                    tmp_path, monkeypatch):
    config = load_config(TINY, overrides=[
        f"data.train={corpus}", "model.latent=gaussian", f"model.regularizer={regularizer}",
        "regularizer.kl_anneal_steps=3", *extra])
    train(config, tmp_path / "straight")
    done = Trainer._done
    with monkeypatch.context() as patch:  # stop after 2 of the 4 steps, as a crash would
        patch.setattr(Trainer, "_done", lambda self: self.progress.step >= 2)
        train(config, tmp_path / "resumed")
    assert Trainer._done is done
    assert load_state(tmp_path / "resumed" / STATE_FILE)["progress"]["step"] == 2
    train(config, tmp_path / "resumed", resume=True)
    straight = load_state(tmp_path / "straight" / STATE_FILE)
    resumed = load_state(tmp_path / "resumed" / STATE_FILE)
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    if extra:  # the memory: the same codes in the same order
        assert straight["callbacks"][0]["codes"].shape == (12, D)
        assert torch.equal(straight["callbacks"][0]["codes"], resumed["callbacks"][0]["codes"])
