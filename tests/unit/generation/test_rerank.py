"""Reranking with the real SmolLM2: a sampled code keeps, of its candidates, one in its mode
with the best combined score of the LM's fluency and the run's own likelihood."""

from __future__ import annotations

import pytest
import torch

from textwae.generation import DecodingConfig, rerank, sample
from textwae.generation import decoding as decoding_module
from textwae.models.autoencoder import TextWAE
from textwae.models.language_model import LanguageModel

CANDIDATES = 4


@pytest.fixture(scope="module")
def model(trained_run) -> TextWAE:
    return TextWAE.from_pretrained(trained_run)


def candidates_of(model, lm, seed=0, codes=3):
    """What reranking sees: codes, each repeated CANDIDATES times, and their decodings."""
    z = model.prior.sample(codes, generator=torch.Generator().manual_seed(seed))
    rows = z.repeat_interleave(CANDIDATES, dim=0)
    decoding = DecodingConfig(lm=lm, lm_candidates=CANDIDATES)
    ids = decoding_module.decode(model, rows, decoding, torch.Generator().manual_seed(seed + 1))
    return z, rows, ids, [model.tokenizer.decode(row) for row in ids]


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_each_code_keeps_its_best_candidate_by_the_weighted_score(model, smollm2, weight,
                                                                  monkeypatch):
    monkeypatch.setattr("textwae.models.reading.LANDED", 0.0)  # every candidate in its mode
    _, rows, ids, texts = candidates_of(model, str(smollm2))
    kept = rerank.best_candidates(model, rows, ids, texts, CANDIDATES, str(smollm2), weight)
    scores = (LanguageModel.load(str(smollm2)).mean_log_likelihoods(texts) if weight == 1.0
              else rerank.content_scores(model, rows, ids))
    scores = torch.where(torch.tensor([bool(t.strip()) for t in texts]), scores, -torch.inf)
    expected = scores.view(-1, CANDIDATES).argmax(dim=1) + torch.arange(3) * CANDIDATES
    assert kept == expected.tolist()


def test_a_candidate_in_its_mode_beats_better_scored_ones_astray(model, smollm2, monkeypatch):
    _, rows, ids, texts = candidates_of(model, str(smollm2))
    spoken = [i for i, text in enumerate(texts) if text.strip()]
    last = [i % CANDIDATES == CANDIDATES - 1 for i in spoken]  # each code's last candidate
    monkeypatch.setattr(rerank, "lands", lambda prior, z, modes: torch.tensor(last))
    kept = rerank.best_candidates(model, rows, ids, texts, CANDIDATES, str(smollm2), 0.5)
    for code, index in enumerate(kept):
        if texts[(code + 1) * CANDIDATES - 1].strip():
            assert index == (code + 1) * CANDIDATES - 1


def test_the_content_score_is_the_runs_own_likelihood_of_the_text(model):
    z, _, _, _ = candidates_of(model, None)
    ids = decoding_module.decode(model, z, DecodingConfig(greedy=True))
    scores = rerank.content_scores(model, z, ids)
    other = rerank.content_scores(model, z.flip(0), ids)  # the same texts, other codes
    assert torch.isfinite(scores).all() and scores.max() <= 0
    assert (scores >= other - 1e-5).float().mean() >= 2 / 3  # a greedy text suits its code


def test_sampling_with_an_lm_reranks_and_greedy_decoding_never_loads_it(model, smollm2):
    texts, modes = sample(model, 5, DecodingConfig(lm=str(smollm2), lm_candidates=3), seed=1)
    assert len(texts) == len(modes) == 5
    plain, _ = sample(model, 5, DecodingConfig(), seed=1)
    assert texts != plain  # the candidates' draws change what is kept
    z = model.prior.sample(3, generator=torch.Generator().manual_seed(2))
    unloadable = DecodingConfig(greedy=True, lm="/no/such/lm", lm_candidates=8)
    assert decoding_module.decode_texts(model, z, unloadable) == \
        decoding_module.decode_texts(model, z, DecodingConfig(greedy=True))
