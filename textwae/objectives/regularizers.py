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

from textwae.config.schema import SPREAD_CODES_PER_DIM, RegularizerConfig
from textwae.distributed import average_gradients, gather_with_grad
from textwae.objectives.codes import LatentOutput
from textwae.objectives.divergences import (
    KERNELS,
    LatentAdversary,
    adversary_loss,
    covariance_divergence,
    encoder_adversarial_loss,
    kl_closed_form,
    kl_monte_carlo,
    mmd,
    prior_adversarial_loss,
    squared_distances,
)
from textwae.objectives.priors import MixtureOfGaussians

CONSTANT_ROWS = 256  # rows of the memory and of the prior samples that estimate the MMD's
#   terms without gradients (memory-memory, prior-prior, memory-prior)


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


def trained_by_main_optimizer(model: nn.Module, *apart: nn.Module) -> list[nn.Parameter]:
    """A model's parameters but those of `apart` (a regulariser's own, which its step hook
    trains; a frozen encoder's)."""
    excluded = {id(p) for module in apart for p in module.parameters()}
    return [p for p in model.parameters() if id(p) not in excluded]


class MMDRegularizer(Regularizer):
    """WAE-MMD: the batch's codes against fresh prior samples; under DDP while training, the
    codes of every rank, so the estimate sees the global batch.

    With `regularizer.code_memory` > 0 the estimate also sees the codes of recent steps,
    detached, first in first out: 64 codes in 32 dimensions cannot show the holes between
    them, a thousand can, and the batch's codes (the only ones with gradients) are then
    pushed into the holes left by all of them (see `mmd_with_memory` on the pull's size);
    the memory is `recentred` on the batch's mean. The memory is filled in the forward pass while
    training, with the global batch (the same on every rank), and saved by `CodeMemory`.
    `regularizer.prior_samples` sets the prior samples per estimate (0: as many as codes).

    With `regularizer.spread_weight` > 0, training adds `covariance_divergence` of the batch's
    and the memory's codes (measured from their own modes), so that no latent direction
    stays thin where prior samples spread as far as in any other; it starts once they are
    `SPREAD_CODES_PER_DIM` a dimension (the memory fills in the first steps).
    """

    def __init__(self, cfg: RegularizerConfig, latent_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        # (M, D) recent codes, newest first; a plain tensor, not a buffer: it is trainer
        # state (saved by CodeMemory), not part of the model's weights
        self.memory = torch.zeros(0, latent_dim)

    def forward(self, latent: LatentOutput, prior: MixtureOfGaussians) -> torch.Tensor:
        z = gather_with_grad(latent.z) if self.training else latent.z  # the global batch
        kept = z.new_zeros(0, z.shape[1])  # (M, D) detached codes of earlier steps
        if self.training and self.cfg.code_memory > 0:
            kept = self.memory.to(device=z.device, dtype=z.dtype)
            self.memory = torch.cat([z.detach(), kept])[: self.cfg.code_memory]
        term = self._mmd(z, recentred(kept, z.detach()), prior)
        count = z.shape[0] + kept.shape[0]
        if (self.training and self.cfg.spread_weight > 0  # once the codes are enough
                and count >= SPREAD_CODES_PER_DIM * z.shape[1]):
            codes = torch.cat([z, kept])
            spread = covariance_divergence(prior.standardised_offsets(codes))
            term = term + self.cfg.spread_weight * batch_weighted(spread, count, z.shape[0])
        return term

    def _mmd(self, z: torch.Tensor, memory: torch.Tensor,
             prior: MixtureOfGaussians) -> torch.Tensor:
        count = self.cfg.prior_samples or z.shape[0] + memory.shape[0]
        base = prior.mean_squared_distance().detach()  # a kernel width, not something to learn
        if prior.learnable:  # stratified, weighted samples: the weights carry gradients
            samples, weights = prior.sample_weighted(count)
            return mmd(torch.cat([z, memory]), samples.to(z.dtype), base, self.cfg.scales,
                       self.cfg.kernel, prior_weights=weights)
        samples = prior.sample(count).to(z.dtype)  # (P, D)
        if memory.shape[0] == 0:
            return mmd(z, samples, base, self.cfg.scales, self.cfg.kernel)
        return mmd_with_memory(z, memory, samples, base, self.cfg)

    def step_hooks(self, prior: MixtureOfGaussians) -> list[StepHook]:
        return [CodeMemory(self)] if self.cfg.code_memory > 0 else []


def label_mmd(z: torch.Tensor, components: torch.Tensor | None, prior: MixtureOfGaussians,
              cfg: RegularizerConfig) -> torch.Tensor | float:
    """The MMD between each label's codes and its own mode, weighted by its share of the
    batch (labels with fewer than two codes skipped); 0 if none is. With few labels (Yelp's
    10%: about three codes a label in a batch of 64) each estimate is noisy, and the term is
    as weak as the labelled share of the batch.

    The aggregate MMD lets each mode hold its own spread of codes, so long as the spreads add
    up to the mixture: a prior sample of a mode then often lands where that mode's codes are
    few, and decodes as another mode's text. Matched per label, each mode's codes spread as
    the mode does, and its samples read as that mode more often; the codes then hold less of
    each sentence (docs/results.md#label-matching).
    """
    if components is None:
        return 0.0
    base = prior.mean_squared_distance().detach()
    terms = []
    for component in components[components >= 0].unique().tolist():
        codes = z[components == component]
        if codes.shape[0] >= 2:
            samples = prior.sample(codes.shape[0], component=component).to(z.dtype)
            terms.append(codes.shape[0] / z.shape[0]
                         * mmd(codes, samples, base, cfg.scales, cfg.kernel))
    return sum(terms) if terms else 0.0


def label_mmd_term(z: torch.Tensor, components: torch.Tensor | None,
                   prior: MixtureOfGaussians, cfg: RegularizerConfig,
                   training: bool) -> torch.Tensor | float:
    """`label_mmd` weighted by `cfg.label_mmd_weight`, while training only: like the
    aggregate MMD it is a batch statistic, which evaluation does not report per batch."""
    if not training or not cfg.label_mmd_weight:
        return 0.0
    return cfg.label_mmd_weight * label_mmd(z, components, prior, cfg)


def recentred(memory: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The memory (M, D) moved so that its mean is the batch's (N, D).

    Codes of earlier steps repel the batch from where the codes were: while the codes still
    sit close together (an untrained encoder's do), that pushes the whole cloud away from its
    own past, a little further every step, and it leaves the prior for good (the mean code
    drifts ever further from the origin). Recentred, the memory tells the batch
    about the codes' shape, while the batch alone places their mean, as without a memory.
    """
    if memory.shape[0] == 0:
        return memory
    return memory - memory.mean(dim=0) + z.mean(dim=0)


def _spaced(count: int, rows: int) -> torch.Tensor:
    """At most `rows` evenly spaced indices of 0..count-1."""
    return torch.linspace(0, count - 1, min(count, rows)).round().long()


def mmd_with_memory(z: torch.Tensor, memory: torch.Tensor, prior: torch.Tensor,
                    base: torch.Tensor | float, cfg: RegularizerConfig,
                    constant_rows: int = CONSTANT_ROWS) -> torch.Tensor:
    """Unbiased MMD^2 of the codes [z; memory] (N + M, D) against prior samples (P, D).

    The terms with z, the only rows with gradients, are summed in full; the three others are
    constants of the step (they move the value, not the gradient), estimated from at most
    `constant_rows` evenly spaced rows each. A step then costs O(N (M + P)) kernel values,
    not O((N + M + P)^2), which matters once the memory is many batches long.
    With `constant_rows` >= M and P it equals `mmd(torch.cat([z, memory]), prior)`.

    Its gradient is that estimate's times (N + M) / N: there, each code is one (N + M)-th
    of the distribution and is pulled that much; here the batch stands for all the codes, so
    each batch code is pulled as hard as by the batch-only MMD, in a direction read from
    N + M codes and P samples. Without the factor, a memory of 1,024 codes would weaken the
    regulariser 17-fold against 64 codes alone, and the codes would leave the prior.
    """
    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        squared = squared_distances(a, b)
        return sum(KERNELS[cfg.kernel](squared, base * scale) for scale in cfg.scales)

    n, m, p = z.shape[0], memory.shape[0], prior.shape[0]
    codes = n + m
    within = similarity(z, z)  # (N, N)
    batch_pairs = (within.sum() - within.diagonal().sum()  # ordered pairs i != j in z
                   + 2 * similarity(z, memory).sum())  # and (z, memory) both ways
    batch_cross = similarity(z, prior).sum()
    with torch.no_grad():
        some_memory = memory[_spaced(m, constant_rows).to(memory.device)]  # (m', D)
        some_prior = prior[_spaced(p, constant_rows).to(prior.device)]  # (p', D)
        memory_pairs = (_mean_off_diagonal(similarity(some_memory, some_memory)) * m * (m - 1)
                        if m > 1 else 0.0)
        prior_term = _mean_off_diagonal(similarity(some_prior, some_prior))
        memory_cross = similarity(some_memory, some_prior).mean() * m * p
    estimate = ((batch_pairs + memory_pairs) / (codes * (codes - 1)) + prior_term
                - 2 * (batch_cross + memory_cross) / (codes * p))
    return batch_weighted(estimate, codes, n)


def batch_weighted(estimate: torch.Tensor, codes: int, batch: int) -> torch.Tensor:
    """`estimate`, over `codes` codes of which the first `batch` carry gradients, with its
    gradient times codes / batch: the batch stands for all the codes it is estimated with."""
    return estimate.detach() + codes / batch * (estimate - estimate.detach())


def _mean_off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    n = matrix.shape[0]
    return (matrix.sum() - matrix.diagonal().sum()) / (n * (n - 1))


class CodeMemory(StepHook):
    """Saves and restores the MMD's memory of recent codes, so a resumed run continues
    exactly; the memory itself is filled by `MMDRegularizer.forward`."""

    def __init__(self, regularizer: MMDRegularizer) -> None:
        self.regularizer = regularizer

    def state_dict(self) -> dict[str, Any]:
        return {"codes": self.regularizer.memory.detach().float().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.regularizer.memory = state["codes"].float()


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
