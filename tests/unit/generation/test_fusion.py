"""Shallow fusion with the real SmolLM2, on a tiny run whose decoder speaks its pieces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY, assert_round_trip, labelled_toy_examples, run, write_labelled
from textwae.config.loading import load_config
from textwae.errors import ConfigError
from textwae.generation import DecodingConfig, beam_search, decode, decoding
from textwae.generation.fusion import FusedDecoder
from textwae.models.autoencoder import TextWAE
from textwae.models.language_model import LanguageModel
from textwae.runs import checkpoint
from textwae.text.tokenizers import LMTokenizer
from textwae.training.pipeline import train

LENGTH = 10  # new tokens per text: the LM steps once per token and row


@pytest.fixture(scope="module")
def lm_run(smollm2, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm_run")
    corpus = write_labelled(root / "corpus.jsonl", labelled_toy_examples())
    config = load_config(TINY, overrides=[f"data.train={corpus}", "tokenizer.type=lm",
                                          f"generation.lm={smollm2}"])
    train(config, root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def model(lm_run) -> TextWAE:
    return TextWAE.from_pretrained(lm_run)


@pytest.fixture(scope="module")
def lm(smollm2) -> LanguageModel:
    return LanguageModel.load(str(smollm2))


def codes(n: int = 6) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(0))


def greedy(smollm2: Path, fusion: float, **options) -> DecodingConfig:
    return DecodingConfig(greedy=True, max_length=LENGTH, lm=str(smollm2), lm_fusion=fusion,
                          **options)


def lm_score(lm: LanguageModel, model: TextWAE, rows: list[list[int]]) -> float:
    """The LM's mean log-likelihood per token of the decoded texts, over all texts."""
    return lm.mean_log_likelihoods([model.tokenizer.decode(ids) for ids in rows]).mean().item()


def test_a_run_with_lm_pieces_trains_saves_and_reloads_with_the_same_ids(lm_run, model,
                                                                         tmp_path):
    assert (lm_run / checkpoint.LM_TOKENIZER_FILE).is_file()
    assert not (lm_run / checkpoint.TOKENIZER_FILE).exists()
    assert isinstance(model.tokenizer, LMTokenizer) and model.tokenizer.vocab_size < 100
    assert model.decoder.step(torch.tensor([2]), model.decoder.start(
        model.decoder_code(codes(1))))[0].shape == (1, model.tokenizer.vocab_size)
    texts = [example.text for example in labelled_toy_examples()]
    again = TextWAE.from_pretrained(lm_run).tokenizer
    assert again.encode_batch(texts) == model.tokenizer.encode_batch(texts)
    assert [model.tokenizer.decode(ids) for ids in again.encode_batch(texts[:20])] == texts[:20]
    batch = model.tokenize(texts[:8]).batch(list(range(8)))
    assert_round_trip(model, batch, tmp_path / "copy")


def test_fusion_with_weight_zero_decodes_as_the_decoder_alone(model, lm, smollm2, monkeypatch):
    alone = decode(model, codes(), greedy(smollm2, 0.0))
    made = []

    def weightless(model, name, weight):
        made.append(FusedDecoder(model.decoder, lm, model.tokenizer, 0.0))
        return made[-1]

    monkeypatch.setattr(decoding, "fused_decoder", weightless)
    assert decode(model, codes(), greedy(smollm2, 1.0)) == alone
    assert len(made) == 1


def test_a_heavy_weight_decodes_text_the_lm_finds_likelier(model, lm, smollm2):
    alone = decode(model, codes(), greedy(smollm2, 0.0))
    fused = decode(model, codes(), greedy(smollm2, 5.0))
    assert fused != alone
    assert lm_score(lm, model, fused) > lm_score(lm, model, alone) + 1.0


def test_beam_search_fuses_through_the_same_steps(model, lm, smollm2):
    fused = FusedDecoder(model.decoder, lm, model.tokenizer, 5.0)
    one = beam_search(model, codes(), beam=1, max_length=LENGTH, decoder=fused)[0]
    assert one == decode(model, codes(), greedy(smollm2, 5.0))
    alone = decode(model, codes(), DecodingConfig(beam=3, max_length=LENGTH))
    wide = decode(model, codes(), DecodingConfig(beam=3, max_length=LENGTH, lm=str(smollm2),
                                                 lm_fusion=5.0))
    assert lm_score(lm, model, wide) > lm_score(lm, model, alone) + 1.0


def test_reordered_states_step_as_those_rows_would_from_the_start(model, lm):
    fused = FusedDecoder(model.decoder, lm, model.tokenizer, 2.0)
    z = model.decoder_code(codes(2))
    first, second = torch.tensor([2, 2]), torch.tensor([5, 9])
    state = fused.step(second, fused.step(first, fused.start(z))[1])[1]
    state = fused.reorder_state(state, torch.tensor([1, 1, 0]))
    reordered, _ = fused.step(torch.tensor([6, 7, 6]), state)
    swapped = z[[1, 1, 0]]
    state = fused.step(second[[1, 1, 0]], fused.step(first[[1, 1, 0]], fused.start(swapped))[1])[1]
    expected, _ = fused.step(torch.tensor([6, 7, 6]), state)
    torch.testing.assert_close(reordered, expected, rtol=1e-4, atol=1e-4)


def test_fused_sampling_never_writes_a_token_the_lm_cannot_read(model, smollm2):
    rows = decode(model, codes(8), DecodingConfig(temperature=1.5, top_p=1.0, max_length=LENGTH,
                                                  lm=str(smollm2), lm_fusion=1.0),
                  torch.Generator().manual_seed(0))
    tokenizer = model.tokenizer
    assert all(tokenizer.unk_id not in ids and tokenizer.pad_id not in ids
               and tokenizer.bos_id not in ids for ids in rows)
    assert any(rows)


def one_line(error: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(error.value)
    return str(error.value)


def test_bad_fusion_settings_are_one_line_errors(model, tiny_model, corpus, smollm2,
                                                 monkeypatch):
    with pytest.raises(ConfigError, match=re.escape("tokenizer.type=lm takes the pieces of "
                                                    "generation.lm's tokenizer: name the LM")) as e:
        load_config(TINY, overrides=[f"data.train={corpus}", "tokenizer.type=lm"])
    one_line(e)
    with pytest.raises(ConfigError, match=re.escape("generation.lm_fusion needs a decoder that "
                                                    "speaks the LM's pieces: set tokenizer")) as e:
        load_config(TINY, overrides=[f"data.train={corpus}", f"generation.lm={smollm2}",
                                     "generation.lm_fusion=1"])
    one_line(e)
    with pytest.raises(ConfigError, match=re.escape("an LM fusion weight of 1.0 needs a "
                                                    "run whose decoder speaks the LM's")) as e:
        decode(tiny_model, codes(), greedy(smollm2, 1.0))
    one_line(e)
    monkeypatch.setattr(model.tokenizer, "lm_vocabulary", "0" * 64)
    with pytest.raises(ConfigError, match="has another vocabulary than") as e:
        decode(model, codes(), greedy(smollm2, 1.0))
    one_line(e)


def test_the_command_line_refuses_fusion_for_a_sentencepiece_run_in_one_line(trained_run,
                                                                             smollm2):
    result = run("generate.py", "sample", "--model", trained_run, "--n", "2", "--lm", smollm2,
                 "--lm-fusion", "1")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: an LM fusion weight of 1.0 needs a run whose decoder speaks the LM's pieces "
        "(trained with tokenizer.type=lm); this run's does not: give a weight of 0"]
