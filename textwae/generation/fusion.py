"""Shallow fusion: a pretrained LM joins every step of a run's decoder, whose vocabulary is
the LM's pieces that the training split uses (tokenizer.type=lm).

Each step's token log-probabilities are log p_decoder + weight * log p_LM over the run's
compact ids (the LM's end of text read as the run's eos), renormalised; temperature, top-p,
greedy or beam search then choose as without the LM. `FusedDecoder` has the decoder's
`start` / `step` / `reorder_state`, so one decoding routine fuses every way of choosing, and
the LM's cache travels in the state. The code still decides what is said: the LM only moves
the choice among the pieces the decoder finds likely towards those that read well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from textwae.errors import ConfigError
from textwae.models.autoencoder import TextWAE
from textwae.models.language_model import SEPARATOR, LanguageModel
from textwae.text.tokenizers import SPECIAL_IDS, LMTokenizer

UNREADABLE = -1e4  # the LM's log-probability of pad, unk and bos, which it cannot read: its
#   exp is 0 in fp32, and unlike -inf a weight of 0 leaves the decoder's scores as they are


class StepDecoder(Protocol):
    """What decoding steps through: a run's decoder, or one fused with an LM."""

    def start(self, code: torch.Tensor) -> Any: ...

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...

    def reorder_state(self, state: Any, order: torch.Tensor) -> Any: ...


@dataclass
class FusedState:
    decoder: Any  # the run's decoder's own state
    cache: Any  # the LM's cache; None before it has read a token


class FusedDecoder:
    """A run's decoder whose every step's log-probabilities (B, V) add `weight` times the
    LM's of the same pieces, renormalised."""

    def __init__(self, decoder: StepDecoder, lm: LanguageModel, tokenizer: LMTokenizer,
                 weight: float) -> None:
        self.decoder, self.lm, self.weight = decoder, lm, weight
        vocab = lm.tokenizer.get_vocab()
        endings = {lm.tokenizer.eos_token_id, vocab.get(SEPARATOR)} - {None}
        self.endings = torch.tensor(sorted(endings or {lm.start_id}))  # the LM's ends of text
        self.pieces = torch.tensor(tokenizer.pieces)  # the LM id of compact ids 4, 5, ...
        # what the LM reads for each compact id: bos is its start, eos its end of text
        self.read = torch.cat([torch.full((SPECIAL_IDS,), lm.start_id), self.pieces])
        self.read[tokenizer.eos_id] = self.endings[0]
        self.eos_id = tokenizer.eos_id
        self.device = next(lm.model.parameters()).device  # the LM's, maybe not the decoder's

    def start(self, code: torch.Tensor) -> FusedState:
        return FusedState(self.decoder.start(code), None)

    def step(self, tokens: torch.Tensor, state: FusedState) -> tuple[torch.Tensor, FusedState]:
        """Fused log-probabilities (B, V) of the token after `tokens` (B,)."""
        logits, decoder_state = self.decoder.step(tokens, state.decoder)  # (B, V)
        lm_logp, cache = self.lm.step(self.read[tokens.cpu()].to(self.device), state.cache)
        lm_logp = lm_logp.to(logits.device)  # (B, V_lm)
        B, V = logits.shape
        lm_scores = lm_logp.new_full((B, V), UNREADABLE)  # the LM's, at the run's ids
        lm_scores[:, SPECIAL_IDS:] = lm_logp[:, self.pieces.to(logits.device)]
        lm_scores[:, self.eos_id] = lm_logp[:, self.endings.to(logits.device)].logsumexp(-1)
        fused = logits.float().log_softmax(dim=-1) + self.weight * lm_scores
        return fused.log_softmax(dim=-1), FusedState(decoder_state, cache)

    def reorder_state(self, state: FusedState, order: torch.Tensor) -> FusedState:
        """Select and repeat batch rows of both states (for beam search)."""
        cache = None if state.cache is None else self.lm.reorder(state.cache, order.to(self.device))
        return FusedState(self.decoder.reorder_state(state.decoder, order), cache)


def fused_decoder(model: TextWAE, lm: str | None, weight: float) -> StepDecoder:
    """The decoder that decoding steps through: `model`'s, fused with the LM `lm` (a folder,
    a GGUF file or package:NAME, loaded once per process) when `weight` > 0."""
    if lm is None or weight == 0:
        return model.decoder
    if not isinstance(model.tokenizer, LMTokenizer):
        raise ConfigError(f"an LM fusion weight of {weight} needs a run whose decoder speaks "
                          "the LM's pieces (trained with tokenizer.type=lm); this run's does "
                          "not: give a weight of 0")
    language_model = LanguageModel.load(lm)
    if not model.tokenizer.matches(language_model.tokenizer):
        raise ConfigError(f"the LM {lm} has another vocabulary than {model.tokenizer.lm}, whose "
                          "pieces the run's decoder speaks: fuse with that LM, or give a fusion "
                          "weight of 0")
    return FusedDecoder(model.decoder, language_model, model.tokenizer, weight)
