"""Reading texts into codes: a sentence model's posterior of texts, and the sentence codes of
stories that the story level reads, both in training and when it generates.

It lies below generation so that training (which fits the story level on these codes) needs
nothing of generation.
"""

from __future__ import annotations

import torch

from textwae.data.units import split_sentences
from textwae.errors import ConfigError, DataError
from textwae.models.autoencoder import TextWAE
from textwae.models.story import StoryCodes
from textwae.objectives.codes import LatentOutput
from textwae.objectives.priors import MixtureOfGaussians
from textwae.text.batching import chunks

ENCODED_AT_ONCE = 256  # texts (or sentences of stories) encoded in one batch
LANDED = 0.9  # p(mode | z) of an output, encoded again, at which it reads as that mode: a
#   sample is kept, a transfer's search ends, a reranked candidate counts as in its mode;
#   higher keeps fewer samples and moves transfers further (docs/results.md#transfer-strength)


def check_texts(texts: object) -> None:
    """Texts to encode: a list (or tuple) of at least one str, none empty. A str alone is
    refused: read as a sequence, it would be its characters."""
    if isinstance(texts, str):
        raise DataError(f"texts must be a list of str, not one str: give [{texts[:40]!r}]")
    if not isinstance(texts, list | tuple):
        raise DataError(f"texts must be a list of str, got a {type(texts).__name__}")
    if not texts:
        raise DataError("no texts to encode")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"text {i + 1} is a {type(text).__name__}, not a str")
        if not text.strip():
            raise DataError(f"text {i + 1} is empty: there is nothing to encode")


@torch.no_grad()
def encode(model: TextWAE, texts: list[str]) -> LatentOutput:
    """Posterior of each text (the mean is the code used for reconstruction)."""
    if not isinstance(model, TextWAE):
        raise ConfigError(f"encode reads texts with a sentence model (a TextWAE; a story "
                          f"run's is run.sentences), not a {type(model).__name__}")
    check_texts(texts)
    model.eval()
    device = next(model.parameters()).device
    batch = model.tokenize(texts).batch(list(range(len(texts)))).to(device)
    return model.encode(*batch.source)


def codes_of(model: TextWAE, texts: list[str]) -> torch.Tensor:
    """Each text's code (its posterior mean), encoded ENCODED_AT_ONCE at a time by the encoder
    alone: maps and reports need no decoding. (N, D) on the model's device."""
    return torch.cat([encode(model, chunk).mean for chunk in chunks(texts, ENCODED_AT_ONCE)])


def lands(prior: MixtureOfGaussians, z: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Whether each code of z (N, D), read back from an output, lies in its mode of `modes`
    (N,): p(mode | z) >= LANDED."""
    chances = prior.component_log_probs(z).softmax(dim=1)  # (N, K)
    return chances.gather(1, modes.to(chances.device)[:, None])[:, 0] >= LANDED


def story_sentences(texts: list[str]) -> list[list[str]]:
    """Each story text split into its sentences (`textwae.data.units.split_sentences`)."""
    check_texts(texts)
    return [split_sentences(text) for text in texts]


def story_inputs(model: TextWAE, texts: list[str]) -> list[list[str]]:
    """What the story level reads of each story text: its names as roles (data.mask_names),
    counted over the whole story so that one character keeps one role in every sentence, then
    its sentences, at most story.max_sentences of them."""
    if model.names is not None:
        texts = [model.names.mask(text)[0] for text in texts]
    return [story[: model.config.story.max_sentences] for story in story_sentences(texts)]


@torch.no_grad()
def sentence_codes(model: TextWAE, stories: list[list[str]],
                   components: torch.Tensor | None = None) -> StoryCodes:
    """The sentence model's code (the posterior mean) of every sentence of every story."""
    flat = [sentence for story in stories for sentence in story]
    if not flat:
        raise DataError("no sentences to encode")
    codes = codes_of(model, flat)
    return StoryCodes(list(codes.cpu().split([len(story) for story in stories])), components)
