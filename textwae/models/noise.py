"""Noise while training: on what the encoder reads (as the denoising adversarial
auto-encoder), and Gaussian noise on codes (`code_noise`).

Shen et al. (2020, "Educating text autoencoders: latent representation guidance via
denoising") perturb what the encoder reads and train the decoder to rebuild the clean text:
similar sentences then get nearby codes, the codes fill the space between training units,
and text decoded from between them (prior samples, interpolation midpoints) stays fluent.

Every function takes token ids (B, T) and their mask (B, T) as padded by
`textwae.text.batching.pad`: each unit is bos, a body, eos, then pad. Only the body is
perturbed; bos, eos and pad keep their places (after a word drop, eos and the pad move up
behind the shortened body), and the shapes are kept. Randomness comes from `generator`
(None: torch's global generator, which the trainer's state saves for an exact resume).
"""

from __future__ import annotations

import torch


def body_mask(mask: torch.Tensor) -> torch.Tensor:
    """True at each unit's body: real tokens other than the first (bos) and last (eos)."""
    lengths = mask.sum(dim=1, keepdim=True)  # (B, 1)
    positions = torch.arange(mask.shape[1], device=mask.device)[None, :]  # (1, T)
    return mask & (positions > 0) & (positions < lengths - 1)


def _uniform(shape: torch.Size, device: torch.device,
             generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device)


def word_drop(ids: torch.Tensor, mask: torch.Tensor, rate: float, pad_id: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Delete each body token with probability `rate`; the rest close up, in order, and the
    unit is padded back to T. Returns the new ids and mask, (B, T) each."""
    if rate <= 0:
        return ids, mask
    B, T = ids.shape  # batch, time
    dropped = body_mask(mask) & (_uniform(ids.shape, ids.device, generator) < rate)  # (B, T)
    keep = mask & ~dropped  # (B, T)
    positions = torch.arange(T, device=ids.device).expand(B, T)  # (B, T)
    # kept tokens first, in their order; a stable sort on (not kept, position)
    order = torch.argsort(positions + T * (~keep).long(), dim=1)  # (B, T)
    lengths = keep.sum(dim=1, keepdim=True)  # (B, 1)
    new_mask = positions < lengths  # (B, T)
    new_ids = ids.gather(1, order).masked_fill(~new_mask, pad_id)  # (B, T)
    return new_ids, new_mask


def blank(ids: torch.Tensor, mask: torch.Tensor, rate: float, blank_id: int,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each body token by `blank_id` (the unk token) with probability `rate`."""
    if rate <= 0:
        return ids
    blanked = body_mask(mask) & (_uniform(ids.shape, ids.device, generator) < rate)
    return ids.masked_fill(blanked, blank_id)


def local_shuffle(ids: torch.Tensor, mask: torch.Tensor, distance: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Permute each body so that no token moves more than `distance` positions.

    Each body token at position i gets the key i + u * (distance + 1), u ~ U[0, 1), and the
    body is sorted by key: a token can pass only those within `distance` of it, since a
    token more than `distance` ahead has a key at least i + distance + 1. bos sorts first,
    eos and pad after every body token, each at its own place.
    """
    if distance <= 0:
        return ids
    B, T = ids.shape  # batch, time
    body = body_mask(mask)  # (B, T)
    positions = torch.arange(T, device=ids.device, dtype=torch.float).expand(B, T)  # (B, T)
    jitter = _uniform(ids.shape, ids.device, generator) * (distance + 1)  # (B, T)
    # bos keeps its key 0 (every body key is > 1); eos and pad sort after the body, in order
    keys = torch.where(body, positions + jitter, positions + (T + distance + 1) * (positions > 0))
    return ids.gather(1, torch.argsort(keys, dim=1))


def encoder_noise(ids: torch.Tensor, mask: torch.Tensor, *, shuffle: int = 0,
                  drop: float = 0.0, blank_rate: float = 0.0, pad_id: int, blank_id: int,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle locally, then drop words, then blank words (Shen et al.'s order)."""
    ids = local_shuffle(ids, mask, shuffle, generator)
    ids, mask = word_drop(ids, mask, drop, pad_id, generator)
    return blank(ids, mask, blank_rate, blank_id, generator), mask


def code_noise(x: torch.Tensor, std: float, training: bool) -> torch.Tensor:
    """x plus N(0, std^2) noise while training (a decoder then also learns the codes around
    the ones it was given); x itself otherwise, or when std is 0."""
    return x + std * torch.randn_like(x) if training and std > 0 else x
