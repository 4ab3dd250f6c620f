"""Reranking with a pretrained LM: each code is decoded into several candidates and one is
kept, so that what is said comes from the code and how well it reads from the LM.

A candidate's score is `lm_weight` times the LM's mean token log-likelihood of its text plus
the rest times the run's own mean token log-likelihood of its ids given the code (content: a
fluent text that says something else scores low). Candidates that, encoded again, lie in
their code's mode (`lands`) come before those that do not, so reranking never trades the mode
for fluency; among equals the best score wins.
"""

from __future__ import annotations

import torch

from textwae.models.autoencoder import TextWAE
from textwae.models.language_model import LanguageModel
from textwae.models.reading import encode, lands
from textwae.text.batching import pad


def content_scores(model: TextWAE, z: torch.Tensor, ids: list[list[int]]) -> torch.Tensor:
    """The run's mean log-likelihood per token (N,) of each row of ids (eos excluded: it is
    scored after them) given its code in z (N, D), teacher-forced."""
    tokenizer = model.tokenizer
    rows = [[tokenizer.bos_id, *row, tokenizer.eos_id] for row in ids]
    padded, mask = pad(rows, tokenizer.pad_id)
    padded, mask = padded.to(z.device), mask.to(z.device)
    target_mask = mask[:, 1:]
    with torch.no_grad():
        nll = model.decoder.target_nll(padded[:, :-1], model.decoder_code(z), padded[:, 1:],
                                       target_mask)  # (tokens,) in row order
    row_of = torch.arange(len(rows), device=z.device)[:, None].expand_as(target_mask)
    total = torch.zeros(len(rows), device=z.device).index_add_(0, row_of[target_mask], -nll)
    return (total / target_mask.sum(dim=1)).cpu()


def best_candidates(model: TextWAE, z: torch.Tensor, ids: list[list[int]], texts: list[str],
                    candidates: int, lm: str, lm_weight: float) -> list[int]:
    """For each code, the index into `ids` / `texts` (N * candidates rows, a code's candidates
    adjacent, z (N * candidates, D) their codes) of the candidate kept."""
    fluency = LanguageModel.load(lm).mean_log_likelihoods(texts)  # (R,), -inf when empty
    content = content_scores(model, z, ids)
    # an empty text is ranked last below; 0 keeps a zero weight from making its score nan
    score = lm_weight * fluency.nan_to_num(neginf=0.0) + (1 - lm_weight) * content
    spoken = [i for i, text in enumerate(texts) if text.strip()]
    said = torch.zeros(len(texts), dtype=torch.bool)
    said[spoken] = True
    in_mode = torch.zeros(len(texts), dtype=torch.bool)
    if spoken:
        codes = encode(model, [texts[i] for i in spoken]).mean
        in_mode[spoken] = lands(model.prior, codes, model.prior.assign(z[spoken])).cpu()
    score = torch.where(said, score, -torch.inf).view(-1, candidates)  # a text with no words last
    landed = in_mode.view(-1, candidates)
    # a code with a candidate in its mode keeps one of those, whatever the others score
    best = torch.where(landed.any(dim=1, keepdim=True) & ~landed, -torch.inf, score).argmax(1)
    return (best + torch.arange(len(best)) * candidates).tolist()
