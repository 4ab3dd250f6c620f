"""Decoding codes into token ids: greedy, temperature / top-k / top-p sampling, beam search.

One routine serves every decoder through its `start` / `step` / `reorder_state` interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from textwae.config.schema import AUTO, GenerationConfig
from textwae.errors import ConfigError
from textwae.generation.arguments import real_number, shown, whole_number
from textwae.generation.fusion import StepDecoder, fused_decoder
from textwae.generation.rerank import best_candidates
from textwae.models.autoencoder import TextWAE
from textwae.text.local_models import default_lm
from textwae.text.names import Cast

BEAM_ROWS = 1024  # hypotheses (codes x beam width) a beam search extends at once


@dataclass
class DecodingConfig:
    """How codes become tokens. The defaults are those of `GenerationConfig` (a run's
    generation: section), but for `lm`: a call decodes with the decoder alone unless it
    names an LM. `DecodingConfig.of(run_settings)` takes a run's own section, LM included, as
    the command line does for the flags it is not given."""

    greedy: bool = False  # argmax at every step; the sampling options are then unused
    temperature: float = GenerationConfig.temperature
    top_k: int = GenerationConfig.top_k  # keep the k most likely tokens; 0 keeps all
    top_p: float = GenerationConfig.top_p  # keep the smallest set of tokens whose
    #   probability reaches p
    max_length: int = GenerationConfig.max_length  # new tokens at most
    beam: int = GenerationConfig.beam  # > 1: beam search of this width (deterministic)
    lm: str | None = None  # a pretrained LM that rereads what is decoded (auto: the default
    #   LM where it is installed)
    lm_candidates: int = GenerationConfig.lm_candidates  # with lm: texts per code to choose from
    lm_weight: float = GenerationConfig.lm_weight  # with lm: its share of a candidate's score
    lm_fusion: float = GenerationConfig.lm_fusion  # with lm: its weight in each token's score

    def __post_init__(self) -> None:
        if not isinstance(self.greedy, bool):
            raise ConfigError(f"greedy must be True or False, got {shown(self.greedy)}")
        self.temperature = real_number(self.temperature, "the temperature", "temperature")
        self.top_k = whole_number(self.top_k, "top-k", "top_k")
        self.top_p = real_number(self.top_p, "top-p", "top_p", low_open=True)
        self.max_length = whole_number(self.max_length, "max-length", "max_length")
        self.beam = whole_number(self.beam, "the beam width", "beam")
        if self.lm is not None and not isinstance(self.lm, str):
            raise ConfigError(f"lm must be a folder, a GGUF file or package:NAME, got "
                              f"{shown(self.lm)}")
        if self.lm == AUTO:
            self.lm = default_lm()
        self.lm_candidates = whole_number(self.lm_candidates, "LM candidates", "lm_candidates")
        self.lm_weight = real_number(self.lm_weight, "the LM weight", "lm_weight")
        self.lm_fusion = real_number(self.lm_fusion, "the LM fusion weight", "lm_fusion")

    @classmethod
    def of(cls, settings: GenerationConfig, **chosen: object) -> DecodingConfig:
        """A run's generation: section (`settings`) as decoding options, with `chosen`
        (e.g. greedy=True) over it."""
        names = [field.name for field in fields(cls) if hasattr(settings, field.name)]
        return cls(**{**{name: getattr(settings, name) for name in names}, **chosen})


def check_decoding(decoding: object) -> DecodingConfig:
    """`decoding` if it is a DecodingConfig (whose values it checked when it was made)."""
    if not isinstance(decoding, DecodingConfig):
        raise ConfigError(f"decoding must be a DecodingConfig, e.g. DecodingConfig("
                          f"temperature=0.7), got {shown(decoding)}")
    return decoding


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


def _strip_eos(rows: list[list[int]], eos_id: int) -> list[list[int]]:
    return [row[: row.index(eos_id)] if eos_id in row else row for row in rows]


@torch.no_grad()
def beam_search(model: TextWAE, z: torch.Tensor, beam: int, max_length: int,
                decoder: StepDecoder | None = None) -> tuple[list[list[int]], torch.Tensor]:
    """Batched beam search: for each code in z (B, D), the token ids (eos excluded) with the
    best length-normalised log-probability, and that score (B,): the mean log-probability
    per generated token, eos included. `decoder` steps (default: the model's; see fusion).

    Each row keeps `beam` hypotheses; a finished one stays in its slot, extended only by eos
    at no cost, and competes with the growing ones by its normalised score.
    """
    if beam > model.tokenizer.vocab_size:
        raise ConfigError(f"a beam of {beam} is wider than the vocabulary "
                          f"({model.tokenizer.vocab_size} tokens): give a narrower beam")
    model.eval()
    decoder = model.decoder if decoder is None else decoder
    bos, eos = model.tokenizer.bos_id, model.tokenizer.eos_id
    B, K = z.shape[0], beam  # codes, beam width
    device = z.device
    code = model.decoder_code(z).repeat_interleave(K, dim=0)  # B * K rows, a code's beams adjacent
    state = decoder.start(code)
    tokens = torch.full((B * K,), bos, dtype=torch.long, device=device)
    total = torch.full((B, K), float("-inf"), device=device)  # summed log-probability
    total[:, 0] = 0.0  # one live hypothesis per code at the start
    length = torch.zeros(B, K, device=device)  # generated tokens, eos included
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    history = torch.empty(B, K, 0, dtype=torch.long, device=device)  # (B, K, t)
    offsets = torch.arange(B, device=device)[:, None] * K  # (B, 1) first row of each code
    for _ in range(max_length):
        logits, state = decoder.step(tokens, state)  # (B * K, V)
        V = logits.shape[-1]
        logp = logits.float().log_softmax(dim=-1).view(B, K, V)
        only_eos = torch.full((V,), float("-inf"), device=device)
        only_eos[eos] = 0.0
        logp = torch.where(finished[..., None], only_eos, logp)  # finished: eos, at no cost
        grown = length + (~finished).float()  # (B, K)
        candidates = total[..., None] + logp  # (B, K, V)
        normalised = candidates / grown[..., None]  # every candidate has a token or more
        best = normalised.view(B, K * V).topk(K, dim=-1).indices  # (B, K), best first
        source, token = best // V, best % V  # (B, K) each
        total = candidates.view(B, K * V).gather(1, best)
        length = grown.gather(1, source)
        finished = finished.gather(1, source) | (token == eos)
        kept = history.gather(1, source[..., None].expand(-1, -1, history.shape[2]))
        history = torch.cat([kept, token[..., None]], dim=-1)
        state = decoder.reorder_state(state, (source + offsets).view(-1))
        tokens = token.view(-1)
        if finished.all():
            break
    return _strip_eos(history[:, 0].tolist(), eos), total[:, 0] / length[:, 0]


@torch.no_grad()
def decode(model: TextWAE, z: torch.Tensor, decoding: DecodingConfig,
           generator: torch.Generator | None = None) -> list[list[int]]:
    """Token ids (eos excluded) generated from each code in z (B, D); a beam search
    `BEAM_ROWS // beam` codes at a time, so that its memory is bounded whatever the beam.
    With `decoding.lm` and `lm_fusion` > 0, the LM joins every step (`fusion`)."""
    decoder = fused_decoder(model, decoding.lm, decoding.lm_fusion)
    if decoding.beam > 1:
        return [ids for part in z.split(max(1, BEAM_ROWS // decoding.beam))
                for ids in beam_search(model, part, decoding.beam, decoding.max_length,
                                       decoder=decoder)[0]]
    model.eval()
    bos, eos = model.tokenizer.bos_id, model.tokenizer.eos_id
    B = z.shape[0]
    state = decoder.start(model.decoder_code(z))
    tokens = torch.full((B,), bos, dtype=torch.long, device=z.device)
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
        tokens = tokens.masked_fill(finished, eos)
        generated.append(tokens)
        finished |= tokens == eos
        if finished.all():
            break
    return _strip_eos(torch.stack(generated, dim=1).tolist(), eos)  # (B, T)


def decode_texts(model: TextWAE, z: torch.Tensor, decoding: DecodingConfig,
                 generator: torch.Generator | None = None) -> list[str]:
    """The text of each code, its names still roles (data.mask_names; see `with_names`).
    With an LM and `lm_candidates` > 1, a sampled code decodes that many candidates and keeps
    the best (`textwae.generation.rerank`); greedy and beam decoding have one candidate."""
    candidates = decoding.lm_candidates if reranks(decoding) else 1
    rows = z.repeat_interleave(candidates, dim=0)  # a code's candidates adjacent
    ids = decode(model, rows, decoding, generator)
    texts = [model.tokenizer.decode(row) for row in ids]
    if candidates == 1:
        return texts
    kept = best_candidates(model, rows, ids, texts, candidates, decoding.lm, decoding.lm_weight)
    return [texts[i] for i in kept]


def reranks(decoding: DecodingConfig) -> bool:
    """Whether decoding chooses among several sampled candidates with its LM."""
    return (decoding.lm is not None and decoding.lm_candidates > 1 and not decoding.greedy
            and decoding.beam == 1)


def casts_of(model: TextWAE, texts: list[str]) -> list[Cast] | None:
    """Each input text's own names by role (data.mask_names), for its outputs to keep."""
    if model.names is None:
        return None
    return [model.names.mask(text)[1] for text in texts]


def path_casts(ends: list[Cast] | None, steps: int) -> list[Cast] | None:
    """The casts of the `steps` outputs of a path between two texts whose own casts are
    `ends`: one cast they share, the start's names (and the end's for roles the start lacks),
    so the path keeps its characters."""
    return None if ends is None else [{**ends[1], **ends[0]}] * steps


def with_names(model: TextWAE, texts: list[str], generator: torch.Generator | None = None,
               casts: Sequence[Cast] | None = None) -> list[str]:
    """Decoded texts with their roles filled (data.mask_names; else as they are): text i
    takes the names of casts[i] (an input's own; one cast object serves every sentence of a
    story), and a role without one a new name that the cast then keeps."""
    if model.names is None:
        return texts
    casts = casts if casts is not None else [{} for _ in texts]
    return [model.names.fill(text, cast, generator)
            for text, cast in zip(texts, casts, strict=True)]
