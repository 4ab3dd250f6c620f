"""What users do with a trained model: encode, sample modes, reconstruct, interpolate, transfer.

Each returns the texts and the mode of each code they were decoded from.
"""

from __future__ import annotations

import torch

from textwae.errors import ConfigError, DataError
from textwae.generation.decoding import DecodingConfig, decode_texts
from textwae.models.autoencoder import TextWAE
from textwae.objectives.codes import LatentOutput


@torch.no_grad()
def encode(model: TextWAE, texts: list[str]) -> LatentOutput:
    """Posterior of each text (the mean is the code used for reconstruction)."""
    if not texts:
        raise DataError("no texts to encode")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise DataError(f"text {empty[0] + 1} is empty: there is nothing to encode")
    model.eval()
    device = next(model.parameters()).device
    batch = model.tokenize(texts).batch(list(range(len(texts)))).to(device)
    return model.encode(*batch.source)


def texts_and_modes(model: TextWAE, z: torch.Tensor, decoding: DecodingConfig,
                    generator: torch.Generator) -> tuple[list[str], list[int]]:
    """What every generation command returns: the decoded texts and each code's mode."""
    return decode_texts(model, z, decoding, generator), model.prior.assign(z).tolist()


def sample(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None = None,
           seed: int = 0) -> tuple[list[str], list[int]]:
    """n texts decoded from prior samples (of one mode if given), with each sample's mode."""
    generator = torch.Generator().manual_seed(seed)
    z = model.prior.sample(n, component=mode, generator=generator)
    return texts_and_modes(model, z, decoding, generator)  # decoding draws after the codes


def reconstruct(model: TextWAE, texts: list[str], decoding: DecodingConfig,
                seed: int = 0) -> tuple[list[str], list[int]]:
    z = encode(model, texts).mean
    return texts_and_modes(model, z, decoding, torch.Generator().manual_seed(seed))


def interpolate(model: TextWAE, start: str, end: str, steps: int, decoding: DecodingConfig,
                seed: int = 0) -> tuple[list[str], list[int]]:
    """Decode `steps` codes on the straight line from the code of `start` to that of `end`."""
    if steps < 2:
        raise ConfigError("interpolation needs at least 2 steps (the two ends)")
    codes = encode(model, [start, end]).mean  # (2, D)
    weights = torch.linspace(0, 1, steps, device=codes.device)[:, None]  # (S, 1)
    z = (1 - weights) * codes[0] + weights * codes[1]  # (S, D)
    return texts_and_modes(model, z, decoding, torch.Generator().manual_seed(seed))


def transfer(model: TextWAE, texts: list[str], to_mode: int, decoding: DecodingConfig,
             seed: int = 0) -> tuple[list[str], list[int]]:
    """Rewrite texts into another mode: move each code from its own component's mean to the
    target's, keeping its offset from the mean (the part that carries the content)."""
    model.prior.check_component(to_mode)
    z = encode(model, texts).mean  # (N, D)
    means = model.prior.means
    moved = z - means[model.prior.assign(z)] + means[to_mode]
    return texts_and_modes(model, moved, decoding, torch.Generator().manual_seed(seed))
