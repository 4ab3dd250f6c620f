"""The teacher-forced pass over held-out units, and the validation metrics training logs.

Both `evaluate` and the Trainer's validation read codes and losses from `forced_pass`, and the
MMD of those codes to the prior from `prior_mmd`, so the two report the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from textwae.config.schema import RegularizerConfig
from textwae.data.records import Example
from textwae.errors import DataError
from textwae.models.autoencoder import TextWAE
from textwae.models.story import StoryCodes, StoryModel
from textwae.objectives.divergences import mmd
from textwae.objectives.priors import MixtureOfGaussians
from textwae.text.batching import TokenizedTexts, evaluation_batches
from textwae.text.token_cache import sequence_lengths

MAX_MMD_CODES = 1000  # MMD is quadratic in the number of codes


@dataclass
class TeacherForced:
    codes: torch.Tensor  # (N, D) posterior means of the units seen, in the units' order
    nll: float  # summed cross-entropy of every target token, in nats
    nll_other_code: float  # the same, each unit decoded from another unit's code
    tokens: int  # number of target tokens (eos included, bos not)
    correct: int  # target tokens predicted right (argmax)
    seen: torch.Tensor  # (N,) index of each unit of `codes` among the units passed in

    @property
    def code_gain(self) -> float:
        """Nats per token the right code saves over another unit's; near 0: z is ignored."""
        return (self.nll_other_code - self.nll) / self.tokens


@torch.no_grad()
def forced_pass(model: TextWAE, texts: TokenizedTexts, max_batches: int | None = None,
                seed: int = 0) -> TeacherForced:
    """Posterior-mean codes and summed teacher-forced NLL of tokenised units, in length
    buckets: of every unit, or of a fixed random subset of `max_batches` batches' worth
    (`seed` picks it).

    The loss is computed here rather than by `model(batch)` because the forward pass also
    evaluates the regulariser, which evaluation does not need and which fails on a batch of
    one code.

    `nll_other_code` decodes each unit of a batch from the next unit's code (the batch's codes
    rolled by one): what the decoder loses without the right code. A decoder that ignores z
    (posterior collapse) loses nothing; a batch of one unit is its own neighbour.
    """
    model.eval()
    device = next(model.parameters()).device
    order = evaluation_batches(sequence_lengths(texts.ids), model.config.train.batch_size,
                               max_batches, seed)
    codes = torch.empty(len(texts.ids), model.config.model.latent_dim, device=device)  # (N, D)
    seen = torch.zeros(len(texts.ids), dtype=torch.bool)
    nll, nll_other_code, tokens, correct = 0.0, 0.0, 0, 0
    for indices in order:
        batch = texts.batch(indices).to(device)
        latent = model.encode(*batch.source, features=batch.features)
        target_mask = batch.mask[:, 1:]  # (B, T-1)
        flat_targets = batch.ids[:, 1:][target_mask]
        for z, own in ((latent.z, True), (latent.z.roll(1, dims=0), False)):
            logits = model.decoder(batch.ids[:, :-1], model.decoder_code(z))  # (B, T-1, V)
            flat_logits = logits[target_mask].float()  # (N, V): real target positions only
            loss = F.cross_entropy(flat_logits, flat_targets, reduction="sum").item()
            if own:
                nll += loss
                correct += int((flat_logits.argmax(dim=-1) == flat_targets).sum())
            else:
                nll_other_code += loss
        tokens += int(target_mask.sum())
        codes[batch.index] = latent.mean.float()
        seen[batch.index.cpu()] = True
    index = seen.nonzero()[:, 0]
    return TeacherForced(codes=codes[index.to(device)], nll=nll,
                         nll_other_code=nll_other_code, tokens=tokens,
                         correct=correct, seen=index)


def teacher_forced(model: TextWAE, examples: list[Example]) -> TeacherForced:
    """`forced_pass` over every example, whose codes then follow the examples' order."""
    if not examples:
        raise DataError("no examples to evaluate")
    return forced_pass(model, model.tokenize([ex.text for ex in examples]))


def prior_mmd(codes: torch.Tensor, prior: MixtureOfGaussians, cfg: RegularizerConfig,
              seed: int) -> float:
    """MMD of codes (N, D), or of a seeded random `MAX_MMD_CODES` of them, to as many seeded
    samples of `prior`, with the kernel and scales of `cfg` (the model's regularizer section).
    A random subset, not the first: codes come in corpus order, and a corpus whose files hold
    one label each (as Yelp's held-out files do) would otherwise be measured on one mode."""
    generator = torch.Generator().manual_seed(seed)
    if len(codes) > MAX_MMD_CODES:
        codes = codes[torch.randperm(len(codes), generator=generator)[:MAX_MMD_CODES]
                      .to(codes.device)]
    z = codes.float()
    samples = prior.sample(len(z), generator=generator).to(z.device, z.dtype)
    return float(mmd(z, samples, prior.mean_squared_distance(), cfg.scales, cfg.kernel).item())


def validation_metrics(model: TextWAE, texts: TokenizedTexts, max_batches: int | None,
                       seed: int) -> dict[str, float]:
    """What training logs at each validation: reconstruction loss (nats per token), token
    accuracy, code gain (nats per token the right code saves over another unit's: near 0, the
    decoder ignores z), MMD of the codes to the prior, the weighted sum of loss and MMD (which
    picks the best weights) and, for units with a label-guided mode, the share assigned their
    own mode. A validation of one unit (a corpus of a few texts) has no MMD, which needs two
    codes: its loss is the reconstruction loss alone."""
    forced = forced_pass(model, texts, max_batches, seed)
    recon = forced.nll / forced.tokens
    metrics = {"recon": recon, "accuracy": forced.correct / forced.tokens,
               "code_gain": forced.code_gain}
    if len(forced.codes) >= 2:
        metrics["mmd"] = prior_mmd(forced.codes, model.prior, model.config.regularizer, seed)
    metrics["loss"] = recon + model.config.regularizer.weight * metrics.get("mmd", 0.0)
    if texts.components is not None:
        metrics.update(_mode_agreement(model.prior, forced.codes, texts.components[forced.seen]))
    return metrics


def _mode_agreement(prior: MixtureOfGaussians, codes: torch.Tensor,
                    components: torch.Tensor) -> dict[str, float]:
    """The share of codes (N, D) with a label-guided mode (N,) assigned that mode, if any."""
    components = components.to(codes.device)
    known = components >= 0
    if not known.any():
        return {}
    assigned = prior.assign(codes[known])
    return {"mode_agreement": (assigned == components[known]).float().mean().item()}


@torch.no_grad()
def story_validation(model: StoryModel, stories: StoryCodes, max_batches: int | None,
                     seed: int) -> dict[str, float]:
    """The story level's validation: NLL per dimension of each next sentence code and the
    end-of-story cross-entropy (per sentence, teacher-forced), their sum ("recon"), the MMD of
    the story codes to the story prior, the weighted sum that picks the best weights, and the
    mode agreement of labelled stories."""
    model.eval()
    device = next(model.parameters()).device
    codes, index, code_nll, stop, sentences = [], [], 0.0, 0.0, 0
    for indices in evaluation_batches(stories.lengths, model.config.story.batch_size,
                                      max_batches, seed):
        batch = stories.batch(indices)
        output = model(batch.to(device))
        count = int(batch.lengths.sum())
        code_nll += output.code_nll.item() * count
        stop += output.stop.item() * count
        sentences += count
        codes.append(output.latent.mean.float())
        index.append(batch.index)
    codes_seen, seen = torch.cat(codes), torch.cat(index)
    recon = (code_nll + stop) / sentences
    divergence = prior_mmd(codes_seen, model.prior, model.config.regularizer, seed)
    metrics = {"recon": recon, "code_nll": code_nll / sentences, "stop": stop / sentences,
               "mmd": divergence, "loss": recon + model.config.regularizer.weight * divergence}
    if stories.components is not None:
        metrics.update(_mode_agreement(model.prior, codes_seen, stories.components[seen]))
    return metrics
