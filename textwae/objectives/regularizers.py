"""Regularisers D(Q_Z, P_Z): each turns a batch's latent output into one scalar to add to the loss.

Every regulariser is built as `cls(cfg, latent_dim)` and called as `reg(latent, prior)`; the
model multiplies what it returns by `regularizer.weight` (lambda). Parameters a regulariser
owns (a discriminator) are trained by its own `StepHook`, which the training loop calls after
every step with the step number and the step's codes, never by the model's optimiser. With a
learnable prior, each regulariser also lets the prior learn: MMD and the adversary see
stratified, weighted prior samples, the KL sees log p(z).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from textwae.config.schema import RegularizerConfig
from textwae.distributed import average_gradients, gather_with_grad
from textwae.objectives.codes import LatentOutput
from textwae.objectives.divergences import (
    LatentAdversary,
    adversary_loss,
    encoder_adversarial_loss,
    kl_closed_form,
    kl_monte_carlo,
    mmd,
    prior_adversarial_loss,
)
from textwae.objectives.priors import MixtureOfGaussians


class StepHook:
    """Work a regulariser does after each model step; its state is saved for an exact resume."""

    def after_step(self, step: int, latent: LatentOutput) -> None:
        """`step`: steps done before this one; `latent`: this step's codes."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class Regularizer(nn.Module):
    """Base: a divergence that needs nothing beyond the model's own optimiser."""

    def step_hooks(self, prior: MixtureOfGaussians) -> list[StepHook]:
        """What this regulariser needs after every step (a discriminator's update)."""
        return []


class MMDRegularizer(Regularizer):
    """WAE-MMD: the batch's codes against as many fresh prior samples; under DDP while
    training, the codes of every rank, so the estimate sees the global batch."""

    def __init__(self, cfg: RegularizerConfig, latent_dim: int) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, latent: LatentOutput, prior: MixtureOfGaussians) -> torch.Tensor:
        z = gather_with_grad(latent.z) if self.training else latent.z  # the global batch
        samples, weights = (prior.sample_weighted(z.shape[0]) if prior.learnable
                            else (prior.sample(z.shape[0]), None))
        base = prior.mean_squared_distance().detach()  # a kernel width, not something to learn
        return mmd(z, samples.to(z.dtype), base, self.cfg.scales, self.cfg.kernel,
                   prior_weights=weights)


class AdversarialRegularizer(Regularizer):
    """WAE-GAN: a latent discriminator tells prior samples from codes; the encoder's term is
    the non-saturating -log D(z). The discriminator learns in alternation with the model, in
    `AdversaryUpdate` after every model step."""

    def __init__(self, cfg: RegularizerConfig, latent_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.adversary = LatentAdversary(latent_dim, cfg.adversary_hidden, cfg.adversary_layers)

    def forward(self, latent: LatentOutput, prior: MixtureOfGaussians) -> torch.Tensor:
        term = encoder_adversarial_loss(self.adversary(latent.z))
        if prior.learnable:  # the prior, in turn, moves towards what passes for codes
            samples, weights = prior.sample_weighted(latent.z.shape[0])
            term = term + prior_adversarial_loss(self.adversary(samples.to(latent.z.dtype)),
                                                 weights)
        return term

    def step_hooks(self, prior: MixtureOfGaussians) -> list[StepHook]:
        return [AdversaryUpdate(self.adversary, prior, self.cfg.adversary_lr)]


class AdversaryUpdate(StepHook):
    """One discriminator step after each model step: prior samples real, the step's codes fake.

    Its AdamW state is the hook's state, so a resumed run continues exactly.
    """

    def __init__(self, adversary: LatentAdversary, prior: MixtureOfGaussians, lr: float) -> None:
        self.adversary = adversary
        self.prior = prior
        self.optimizer = torch.optim.AdamW(adversary.parameters(), lr=lr, betas=(0.5, 0.999))
        self.last_loss = float("nan")  # the discriminator's loss before its latest step

    def step(self, codes: torch.Tensor, prior_samples: torch.Tensor) -> float:
        """One update on fixed codes (N, D) against prior samples (M, D); returns the loss."""
        # the model's backward pass left the encoder term's gradients here: drop them
        self.optimizer.zero_grad(set_to_none=True)
        loss = adversary_loss(self.adversary(prior_samples), self.adversary(codes))
        loss.backward()
        average_gradients(self.adversary.parameters())  # under DDP: one discriminator
        self.optimizer.step()
        self.last_loss = loss.item()
        return self.last_loss

    def after_step(self, step: int, latent: LatentOutput) -> None:
        codes = latent.z.detach().float()  # (B, D); fp32 even when the step ran in AMP
        with torch.no_grad():
            samples = self.prior.sample(codes.shape[0]).to(codes.device)  # (B, D)
        self.step(codes, samples)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class KLRegularizer(Regularizer):
    """VAE baseline: KL(q(z|x) || p(z)), the batch mean of its sum over dimensions.

    Closed form when the prior has one component (the standard normal when spread is 0 and
    scale 1); for a mixture, the one-sample Monte Carlo estimate log q(z|x) - log p(z) at the
    reparameterised z. With `regularizer.weight` 1 the loss is the negative ELBO (per token
    for the reconstruction). `anneal` scales the term; `KLAnnealing` raises it from 0 to 1.
    """

    def __init__(self, cfg: RegularizerConfig, latent_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.anneal = 1.0  # outside training: the full KL

    def forward(self, latent: LatentOutput, prior: MixtureOfGaussians) -> torch.Tensor:
        if latent.logvar is None:
            raise ValueError("the KL regulariser needs a Gaussian latent (model.latent=gaussian)")
        if prior.components == 1:
            kl = kl_closed_form(latent.mean, latent.logvar, prior.means[0],
                                prior.component_log_scales()[0], self.cfg.free_bits)
        else:
            kl = kl_monte_carlo(latent.z, latent.mean, latent.logvar, prior.log_prob(latent.z),
                                self.cfg.free_bits)
        return self.anneal * kl

    def step_hooks(self, prior: MixtureOfGaussians) -> list[StepHook]:
        if self.cfg.kl_anneal_steps <= 0:
            return []
        return [KLAnnealing(self, self.cfg.kl_anneal_steps)]


class KLAnnealing(StepHook):
    """Linear KL annealing: the KL's weight is step / steps at step `step` (from 0), then 1."""

    def __init__(self, regularizer: KLRegularizer, steps: int) -> None:
        self.regularizer = regularizer
        self.steps = steps
        regularizer.anneal = 0.0  # the first step

    def after_step(self, step: int, latent: LatentOutput) -> None:
        # `step` counts the steps before this one: set the weight of the next
        self.regularizer.anneal = min(1.0, (step + 1) / self.steps)

    def state_dict(self) -> dict[str, Any]:
        return {"anneal": self.regularizer.anneal}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.regularizer.anneal = float(state["anneal"])


REGULARIZERS = {"mmd": MMDRegularizer, "gan": AdversarialRegularizer, "kl": KLRegularizer}
