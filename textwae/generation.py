"""Decoding from codes, and what users do with it: sample modes, reconstruct, interpolate."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from textwae.config import ConfigError
from textwae.data import DataError, collate
from textwae.latent import LatentOutput
from textwae.model import TextWAE
from textwae.tokenizer import BOS_ID, EOS_ID


@dataclass
class DecodingConfig:
    greedy: bool = False  # argmax at every step; the sampling options are then unused
    temperature: float = 1.0
    top_k: int = 0  # keep the k most likely tokens; 0 keeps all
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p
    max_length: int = 64  # new tokens at most

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError("temperature must be positive (use greedy for argmax decoding)")
        if self.top_k < 0:
            raise ConfigError("top-k must be 0 (off) or positive")
        if not 0 < self.top_p <= 1:
            raise ConfigError("top-p must lie in (0, 1]")
        if self.max_length <= 0:
            raise ConfigError("max-length must be positive")


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the top-p nucleus: (B, V)."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of strictly more likely tokens
        sorted_logits = sorted_logits.masked_fill(before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


@torch.no_grad()
def decode(model: TextWAE, z: torch.Tensor, decoding: DecodingConfig,
           generator: torch.Generator | None = None) -> list[list[int]]:
    """Token ids (eos excluded) generated from each code in z (B, D)."""
    model.eval()
    decoder = model.decoder
    B = z.shape[0]
    state = decoder.start(z)
    tokens = torch.full((B,), BOS_ID, dtype=torch.long, device=z.device)
    finished = torch.zeros(B, dtype=torch.bool, device=z.device)
    generated = []
    for _ in range(decoding.max_length):
        logits, state = decoder.step(tokens, state)  # (B, V)
        if decoding.greedy:
            tokens = logits.argmax(dim=-1)
        else:
            logits = filter_logits(logits / decoding.temperature, decoding.top_k, decoding.top_p)
            probs = logits.softmax(dim=-1).cpu()
            tokens = torch.multinomial(probs, 1, generator=generator)[:, 0].to(z.device)
        tokens = tokens.masked_fill(finished, EOS_ID)
        generated.append(tokens)
        finished |= tokens == EOS_ID
        if finished.all():
            break
    rows = torch.stack(generated, dim=1).tolist()  # (B, T)
    return [row[: row.index(EOS_ID)] if EOS_ID in row else row for row in rows]


def decode_texts(model: TextWAE, z: torch.Tensor, decoding: DecodingConfig,
                 generator: torch.Generator | None = None) -> list[str]:
    return [model.tokenizer.decode(ids) for ids in decode(model, z, decoding, generator)]


@torch.no_grad()
def encode(model: TextWAE, texts: list[str]) -> LatentOutput:
    """Posterior of each text (the mean is the code used for reconstruction)."""
    if not texts:
        raise DataError("no texts to encode")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise DataError(f"text {empty[0] + 1} is empty: there is nothing to encode")
    model.eval()
    sequences = model.tokenizer.encode_batch(texts, model.config.data.max_length)
    device = next(model.parameters()).device
    batch = collate(sequences, list(range(len(texts))), model.tokenizer.pad_id).to(device)
    return model.encode(batch.ids, batch.mask)


def sample(model: TextWAE, n: int, decoding: DecodingConfig, mode: int | None = None,
           seed: int = 0) -> tuple[list[str], list[int]]:
    """n texts decoded from prior samples (of one mode if given), with each sample's mode."""
    generator = torch.Generator().manual_seed(seed)
    z = model.prior.sample(n, component=mode, generator=generator)
    modes = model.prior.assign(z).tolist()
    return decode_texts(model, z, decoding, generator), modes


def reconstruct(model: TextWAE, texts: list[str], decoding: DecodingConfig,
                seed: int = 0) -> tuple[list[str], list[int]]:
    z = encode(model, texts).mean
    generator = torch.Generator().manual_seed(seed)
    return decode_texts(model, z, decoding, generator), model.prior.assign(z).tolist()


def interpolate(model: TextWAE, start: str, end: str, steps: int, decoding: DecodingConfig,
                seed: int = 0) -> tuple[list[str], list[int]]:
    """Decode `steps` codes on the straight line from the code of `start` to that of `end`."""
    if steps < 2:
        raise ConfigError("interpolation needs at least 2 steps (the two ends)")
    codes = encode(model, [start, end]).mean  # (2, D)
    weights = torch.linspace(0, 1, steps, device=codes.device)[:, None]  # (S, 1)
    z = (1 - weights) * codes[0] + weights * codes[1]  # (S, D)
    generator = torch.Generator().manual_seed(seed)
    return decode_texts(model, z, decoding, generator), model.prior.assign(z).tolist()
