"""One decoding API for both decoders: greedy, sampling and batched beam search."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import TINY, TINY_TRANSFORMER, toy_texts
from textwae.cli.main import generate_parser
from textwae.config.loading import load_config
from textwae.config.schema import TokenizerConfig
from textwae.errors import ConfigError
from textwae.generation import DecodingConfig, beam_search, decode
from textwae.models.autoencoder import TextWAE
from textwae.text.tokenizers import BOS_ID, EOS_ID, Tokenizer

DECODERS = ["gru", "transformer"]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(toy_texts(), TokenizerConfig(vocab_size=120))


def build(tokenizer: Tokenizer, decoder: str, seed: int = 0) -> TextWAE:
    torch.manual_seed(seed)
    sources = [TINY] if decoder == "gru" else [TINY, TINY_TRANSFORMER]
    # the decoding routines over a decoder that reads the code alone (the mode input is
    # tested with the model); the untrained weights each seed gives stay as they were
    overrides = [f"model.decoder={decoder}", "model.mode_input=false"]
    return TextWAE(load_config(*sources, overrides=overrides), tokenizer).eval()


def codes(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed)) * 2


def score(model: TextWAE, z: torch.Tensor, rows: list[list[int]], max_length: int) -> torch.Tensor:
    """Mean log-probability per generated token (eos included when it was generated), by
    teacher forcing: independent of the decoding code."""
    scores = []
    for code, ids in zip(z, rows, strict=True):
        generated = [*ids, EOS_ID] if len(ids) < max_length else ids
        inputs = torch.tensor([[BOS_ID, *generated[:-1]]])
        with torch.no_grad():
            read = model.decoder_code(code[None])  # (1, what the decoder reads of it)
            logp = model.decoder(inputs, read).log_softmax(dim=-1)[0]  # (T, V)
        scores.append(logp[torch.arange(len(generated)), torch.tensor(generated)].mean())
    return torch.stack(scores)


@pytest.mark.parametrize("decoder", DECODERS)
def test_beam_of_width_one_equals_greedy(tokenizer, decoder):
    model, z = build(tokenizer, decoder), codes(5)
    greedy = decode(model, z, DecodingConfig(greedy=True, max_length=10))
    assert beam_search(model, z, beam=1, max_length=10)[0] == greedy


class EosBias(nn.Module):
    """A decoder whose eos logit is raised by `bias`, so that hypotheses end at many lengths."""

    def __init__(self, inner: nn.Module, bias: float) -> None:
        super().__init__()
        self.inner, self.bias = inner, bias

    def _raise(self, logits: torch.Tensor) -> torch.Tensor:
        return logits + self.bias * F.one_hot(torch.tensor(EOS_ID), logits.shape[-1])

    def forward(self, ids, z):
        return self._raise(self.inner(ids, z))

    def start(self, z):
        return self.inner.start(z)

    def step(self, tokens, state):
        logits, state = self.inner.step(tokens, state)
        return self._raise(logits), state

    def reorder_state(self, state, order):
        return self.inner.reorder_state(state, order)


# eos biases that make some hypotheses end early (an untrained transformer's logits are flat)
EOS_BIAS = {"gru": 1.0, "transformer": 0.08}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("biased", [False, True])
def test_beam_search_scores_at_least_greedy(tokenizer, decoder, biased):
    model, z, length = build(tokenizer, decoder, seed=1), codes(8, seed=3), 8
    if biased:
        model.decoder = EosBias(model.decoder, EOS_BIAS[decoder])
    greedy = decode(model, z, DecodingConfig(greedy=True, max_length=length))
    rows, reported = beam_search(model, z, beam=4, max_length=length)
    assert len(rows) == 8
    if biased:  # both finished and unfinished hypotheses took part
        assert {len(row) < length for row in greedy + rows} == {True, False}
    recomputed = score(model, z, rows, length)
    torch.testing.assert_close(reported, recomputed, rtol=1e-4, atol=1e-5)
    assert (recomputed >= score(model, z, greedy, length) - 1e-5).all()


def test_decode_with_a_beam_runs_batched_through_the_one_api(tokenizer):
    model, z = build(tokenizer, "transformer"), codes(3)
    rows = decode(model, z, DecodingConfig(beam=3, max_length=6))
    assert rows == beam_search(model, z, beam=3, max_length=6)[0]
    assert all(len(row) <= 6 and EOS_ID not in row for row in rows)


def test_beam_must_be_positive_and_is_a_cli_option():
    with pytest.raises(ConfigError, match="beam"):
        DecodingConfig(beam=0)
    for command in (["sample"], ["reconstruct", "a text"], ["interpolate", "a", "b"]):
        assert generate_parser().parse_args([*command, "--model", "m", "--beam", "3"]).beam == 3
