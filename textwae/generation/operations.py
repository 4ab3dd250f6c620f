"""What users do with a trained model: encode, sample modes, reconstruct, interpolate, transfer.

Each returns the texts and the mode of each code they were decoded from. Codes are decoded
`CHUNK` at a time, so memory stays flat in the number of outputs; the `iter_*` forms yield
each chunk's outputs as soon as it is decoded (the command line prints them as they come).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from textwae.errors import ConfigError, DataError
from textwae.generation.decoding import DecodingConfig, decode_texts
from textwae.models.autoencoder import TextWAE
from textwae.models.story import StoryModel
from textwae.objectives.codes import LatentOutput
from textwae.text.batching import chunks

CHUNK = 64  # codes decoded at once
Generated = tuple[list[str], list[int]]  # texts, and the mode of each one's code


def check_texts(texts: list[str]) -> None:
    """Texts to encode: at least one, none empty."""
    if not texts:
        raise DataError("no texts to encode")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise DataError(f"text {empty[0] + 1} is empty: there is nothing to encode")


@torch.no_grad()
def encode(model: TextWAE, texts: list[str]) -> LatentOutput:
    """Posterior of each text (the mean is the code used for reconstruction)."""
    check_texts(texts)
    model.eval()
    device = next(model.parameters()).device
    batch = model.tokenize(texts).batch(list(range(len(texts)))).to(device)
    return model.encode(*batch.source)


def texts_and_modes(model: TextWAE, z: torch.Tensor, decoding: DecodingConfig,
                    generator: torch.Generator) -> Generated:
    """What every generation command returns: the decoded texts and each code's mode."""
    return decode_texts(model, z, decoding, generator), model.prior.assign(z).tolist()


def joined(parts: Iterator[Generated]) -> Generated:
    """The chunks of an `iter_*` function as one result."""
    texts: list[str] = []
    modes: list[int] = []
    for chunk_texts, chunk_modes in parts:
        texts += chunk_texts
        modes += chunk_modes
    return texts, modes


def iter_sample(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None = None,
                seed: int = 0, code_scale: float = 1.0) -> Iterator[Generated]:
    """`sample`, a chunk at a time; the arguments are checked at the call, before any output."""
    if n < 1:
        raise ConfigError(f"the number of samples must be at least 1, got {n}")
    if not 0 <= code_scale < math.inf:
        raise ConfigError(f"the code scale must be a finite number >= 0, got {code_scale}")
    if mode is not None:
        model.prior.check_component(mode)
    return _iter_sampled(model, n, decoding, mode, torch.Generator().manual_seed(seed),
                         code_scale)


def _iter_sampled(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None,
                  generator: torch.Generator, code_scale: float) -> Iterator[Generated]:
    for start in range(0, n, CHUNK):
        z = model.prior.sample(min(CHUNK, n - start), component=mode, generator=generator,
                               code_scale=code_scale)
        yield texts_and_modes(model, z, decoding, generator)  # decoding draws after the codes


def sample(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None = None,
           seed: int = 0, code_scale: float = 1.0) -> Generated:
    """n texts decoded from prior samples (of one mode if given), with each sample's mode.

    `code_scale` below 1 draws codes nearer each mode's mean, where the training codes are
    densest: samples read as their mode more often and vary less (on the demo run, 0.8 read
    0.945-0.995 per mode against 0.875-0.98 at 1, with 72% distinct lines against 80%;
    benchmarks/latent_quality.py). 1 samples the model's prior itself."""
    return joined(iter_sample(model, n, decoding, mode, seed, code_scale))


def _iter_moved(model: TextWAE, texts: list[str], move: Callable[[torch.Tensor], torch.Tensor],
                decoding: DecodingConfig, seed: int) -> Iterator[Generated]:
    """Encode texts a chunk at a time, move each chunk's codes (N, D), decode them."""
    check_texts(texts)  # every text, before the first output
    generator = torch.Generator().manual_seed(seed)
    for chunk in chunks(texts, CHUNK):
        yield texts_and_modes(model, move(encode(model, chunk).mean), decoding, generator)


def iter_reconstruct(model: TextWAE, texts: list[str], decoding: DecodingConfig,
                     seed: int = 0) -> Iterator[Generated]:
    """`reconstruct`, a chunk at a time."""
    return _iter_moved(model, texts, lambda z: z, decoding, seed)


def reconstruct(model: TextWAE, texts: list[str], decoding: DecodingConfig,
                seed: int = 0) -> Generated:
    """Decode each text's own code."""
    return joined(iter_reconstruct(model, texts, decoding, seed))


def interpolate(model: TextWAE, start: str, end: str, steps: int, decoding: DecodingConfig,
                seed: int = 0) -> Generated:
    """Decode `steps` codes on the straight line from the code of `start` to that of `end`."""
    z = line_between(encode(model, [start, end]).mean, steps)
    generator = torch.Generator().manual_seed(seed)
    return joined(texts_and_modes(model, part, decoding, generator) for part in z.split(CHUNK))


def line_between(ends: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` evenly spaced codes (S, D) on the line from ends[0] to ends[1] (2, D)."""
    if steps < 2:
        raise ConfigError("interpolation needs at least 2 steps (the two ends)")
    weights = torch.linspace(0, 1, steps, device=ends.device)[:, None]  # (S, 1)
    return (1 - weights) * ends[0] + weights * ends[1]


def transfer_strength(model: TextWAE | StoryModel, strength: float | None = None) -> float:
    """The k a transfer moves by: `strength`, or the run's prior.transfer_strength when None.
    Refuses a k that is not a finite number >= 0."""
    if strength is None:
        return model.config.prior.transfer_strength
    if not (math.isfinite(strength) and strength >= 0):
        raise ConfigError(f"transfer strength must be finite and not negative, got {strength}")
    return strength


def check_transfer(model: TextWAE | StoryModel, to_mode: int,
                   strength: float | None = None) -> float:
    """The k of a transfer to `to_mode` (`transfer_strength`), after refusing a mode the
    prior does not have."""
    model.prior.check_component(to_mode)
    return transfer_strength(model, strength)


def transfer_codes(model: TextWAE | StoryModel, z: torch.Tensor, to_mode: int,
                   strength: float | None = None) -> torch.Tensor:
    """Codes (N, D) moved towards mode `to_mode`: z + k (mean_target - mean_source), where
    the source is each code's own (assigned) component and k is `transfer_strength`. k = 1
    puts the code as far from the target's mean as it was from its own (its offset, which
    carries the content, kept); k = 0 leaves it where it was; k between trades style for
    content."""
    k = check_transfer(model, to_mode, strength)
    means = model.prior.means
    return z + k * (means[to_mode] - means[model.prior.assign(z)])


def iter_transfer(model: TextWAE, texts: list[str], to_mode: int, decoding: DecodingConfig,
                  seed: int = 0, strength: float | None = None) -> Iterator[Generated]:
    """`transfer`, a chunk at a time."""
    strength = check_transfer(model, to_mode, strength)  # before the first output
    return _iter_moved(model, texts, lambda z: transfer_codes(model, z, to_mode, strength),
                       decoding, seed)


def transfer(model: TextWAE, texts: list[str], to_mode: int, decoding: DecodingConfig,
             seed: int = 0, strength: float | None = None) -> Generated:
    """Rewrite texts into another mode by offset arithmetic (`transfer_codes`): each code moves
    k times the step from its own component's mean to the target's (k: `transfer_strength`)."""
    return joined(iter_transfer(model, texts, to_mode, decoding, seed, strength))
