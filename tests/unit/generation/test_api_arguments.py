"""The Python API checks what it is given where it enters (issue 36, items 5 and 8): a wrong type
or a number out of its range is a TextWAEError subclass that names it, never an error from
inside torch; a mode is a label or an index, as on the command line; a long interpolation and a
wide beam are decoded a bounded part at a time."""

import math

import numpy
import pytest
import torch

from tests.conftest import TINY, toy_texts
from tests.unit.generation.stub_level import CodeLevel
from textwae import generation
from textwae.config.loading import load_config
from textwae.config.schema import GENERATION_LIMITS, GenerationConfig
from textwae.errors import ConfigError, DataError, TextWAEError
from textwae.generation import DecodingConfig, decoding, operations
from textwae.models.autoencoder import TextWAE
from textwae.text.tokenizers import Tokenizer

GREEDY = DecodingConfig(greedy=True, max_length=4)
LABELS = ["praise", "sarcasm", "complaint"]


@pytest.fixture
def labelled(tiny_model):
    """The tiny model with its three modes named (label-guided modes)."""
    tiny_model.config.prior.labels = list(LABELS)
    return tiny_model


@pytest.mark.parametrize("field, value, message", [
    ("temperature", "hot", "the temperature must be a finite number >= 0.0001 and at most 100, "
                           "got 'hot'"),
    ("temperature", float("nan"), "the temperature must be a finite number"),
    ("temperature", float("inf"), "the temperature must be a finite number"),
    ("temperature", 0.0, "the temperature must be a finite number >= 0.0001, got 0.0"),
    ("temperature", 1e30, "the temperature must be at most 100, got 1e+30"),
    ("top_k", -1, "top-k must be a whole number >= 0, got -1"),
    ("top_k", 2.5, "top-k must be a whole number"),
    ("top_k", "3", "top-k must be a whole number"),
    ("top_p", 0.0, "top-p must be a finite number > 0, got 0.0"),
    ("top_p", float("nan"), "top-p must be a finite number > 0 and at most 1"),
    ("top_p", 1.5, "top-p must be at most 1, got 1.5"),
    ("max_length", 0, "max-length must be a whole number >= 1, got 0"),
    ("max_length", 10**11, "max-length must be at most 4096"),
    ("max_length", 8.0, "max-length must be a whole number"),
    ("beam", 10**6, "the beam width must be at most 100, got 1000000"),
    ("beam", True, "the beam width must be a whole number"),
    ("greedy", "yes", "greedy must be True or False, got 'yes'"),
])
def test_a_decoding_config_refuses_a_wrong_type_or_range_when_it_is_made(field, value, message):
    with pytest.raises(ConfigError) as error:
        DecodingConfig(**{field: value})
    assert message in str(error.value)


def test_a_decoding_config_takes_numbers_of_any_numeric_type_as_python_numbers():
    made = DecodingConfig(top_k=numpy.int64(5), temperature=1, top_p=numpy.float32(0.5))
    assert (made.top_k, made.temperature, made.top_p) == (5, 1.0, 0.5)
    assert (type(made.top_k), type(made.temperature), type(made.top_p)) == (int, float, float)


@pytest.mark.parametrize("call, error, message", [
    (lambda m: generation.sample(m, "5", GREEDY), ConfigError,
     "the number of samples must be a whole number >= 1 and at most 1000000, got '5'"),
    (lambda m: generation.sample(m, 5.0, GREEDY), ConfigError, "the number of samples"),
    (lambda m: generation.sample(m, 0, GREEDY), ConfigError,
     "the number of samples must be a whole number >= 1, got 0"),
    (lambda m: generation.sample(m, 2, None), ConfigError,
     "decoding must be a DecodingConfig, e.g. DecodingConfig(temperature=0.7), got None"),
    (lambda m: generation.sample(m, 2, {"temperature": 0.7}), ConfigError,
     "decoding must be a DecodingConfig"),
    (lambda m: generation.sample(m, 2, GREEDY, seed=-1), ConfigError,
     "the seed must be a whole number >= 0, got -1"),
    (lambda m: generation.sample(m, 2, GREEDY, seed=2**63), ConfigError,
     "the seed must be at most 9223372036854775807"),
    (lambda m: generation.sample(m, 2, GREEDY, seed="7"), ConfigError, "the seed must be"),
    (lambda m: generation.sample(m, 2, GREEDY, code_scale=1e30), ConfigError,
     "the code scale must be at most 10, got 1e+30"),
    (lambda m: generation.sample(m, 2, GREEDY, code_scale=10**400), ConfigError,
     "the code scale must be at most 10, got a number of about 401 digits"),
    (lambda m: generation.sample(m, 2, GREEDY, redraws=10**6), ConfigError,
     "redraws must be at most 100"),
    (lambda m: generation.encode(m, "Hello"), DataError,
     "texts must be a list of str, not one str: give ['Hello']"),
    (lambda m: generation.encode(m, ["Hello", 3]), DataError, "text 2 is a int, not a str"),
    (lambda m: generation.encode(m, {"Hello"}), DataError,
     "texts must be a list of str, got a set"),
    (lambda m: generation.reconstruct(m, "Hello", GREEDY), DataError, "not one str"),
    (lambda m: generation.transfer(m, "Hello", 1, GREEDY), DataError, "not one str"),
    (lambda m: generation.interpolate(m, ["a"], "b", 5, GREEDY), DataError,
     "text 1 is a list, not a str"),
    (lambda m: generation.interpolate(m, "a", "b", 10**8, GREEDY), ConfigError,
     "interpolation steps (the two ends included) must be at most 10000, got 100000000"),
    (lambda m: generation.interpolate(m, "a", "b", 1, GREEDY), ConfigError,
     "must be a whole number >= 2, got 1"),
    (lambda m: generation.transfer(m, ["a"], 1, GREEDY, strength=1e30), ConfigError,
     "the transfer strength must be at most 10, got 1e+30"),
    (lambda m: generation.transfer(m, ["a"], 1, GREEDY, strength="2"), ConfigError,
     "the transfer strength must be a finite number"),
    (lambda m: generation.transfer(m, ["a"], 1, GREEDY, steps=10**6), ConfigError,
     "transfer strength steps must be at most 100"),
    (lambda m: generation.transfer(m, ["a"], 1.0, GREEDY), ConfigError,
     "a mode must be a label or an index, got 1.0"),
    (lambda m: generation.sample(m, 2, GREEDY, mode=True), ConfigError,
     "a mode must be a label or an index, got True"),
    (lambda m: generation.sample(m, 2, GREEDY, mode=7), ConfigError, "mode 7 is out of range"),
])
def test_each_wrong_argument_is_a_textwae_error_naming_it_before_any_decoding(
        tiny_model, monkeypatch, call, error, message):
    decoded = []
    monkeypatch.setattr(decoding, "decode", lambda *args, **kwargs: decoded.append(1) or [])
    with pytest.raises(error) as raised:
        call(tiny_model)
    assert isinstance(raised.value, TextWAEError) and message in str(raised.value)
    assert len(str(raised.value)) < 200 and not decoded


@pytest.mark.parametrize("source", ["runs/demo", None, 3, torch.zeros(2)])
def test_what_is_not_a_run_or_a_level_is_refused_by_name(source):
    with pytest.raises(ConfigError, match="generation needs a loaded run: TextWAE"):
        generation.sample(source, 2, GREEDY)
    with pytest.raises(ConfigError, match="encode reads texts with a sentence model"):
        generation.encode(source, ["a text"])


def test_a_mode_label_works_wherever_an_index_does(labelled):
    by_label = generation.sample(labelled, 4, GREEDY, mode="sarcasm", code_scale=0.0)
    by_index = generation.sample(labelled, 4, GREEDY, mode=1, code_scale=0.0)
    assert by_label == by_index and by_label[1] == [1] * 4
    texts = toy_texts(3)
    assert (generation.transfer(labelled, texts, "complaint", GREEDY, steps=2)
            == generation.transfer(labelled, texts, 2, GREEDY, steps=2))
    with pytest.raises(ConfigError, match="neither a label nor a component index; labels: "
                                          "praise, sarcasm, complaint"):
        generation.sample(labelled, 2, GREEDY, mode="joy")


def test_the_largest_seed_torch_takes_is_accepted(tiny_model):
    seed = int(GENERATION_LIMITS["seed"][1])
    assert generation.sample(tiny_model, 2, GREEDY, seed=seed) == generation.sample(
        tiny_model, 2, GREEDY, seed=seed)


def test_an_interpolation_is_decoded_a_chunk_at_a_time_and_ends_at_its_ends():
    level = CodeLevel()
    start, end = "0.0 0.0", "3.0 -6.0"
    steps = int(GENERATION_LIMITS["steps"][1])
    parts = generation.iter_interpolate(level, start, end, steps, GREEDY)
    first, _ = next(parts)
    assert len(first) == operations.CHUNK and level.decoded == operations.CHUNK
    path = first + [output for outputs, _ in parts for output in outputs]
    assert len(path) == steps and level.decoded == steps
    codes = level.encode(path)  # (S, 2)
    expected = torch.linspace(0, 1, steps)[:, None] * torch.tensor([3.0, -6.0])
    torch.testing.assert_close(codes, expected, atol=1e-5, rtol=0)
    assert codes[0].tolist() == [0.0, 0.0] and codes[-1].tolist() == [3.0, -6.0]


def test_a_wide_beam_searches_a_bounded_number_of_rows_and_finds_the_same(tiny_model,
                                                                          monkeypatch):
    z = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
    at_once = generation.beam_search(tiny_model, z, beam=4, max_length=5)[0]
    searched = []
    search = decoding.beam_search

    def recorded(model, part, beam, max_length, **options):
        searched.append(len(part) * beam)
        return search(model, part, beam, max_length, **options)

    monkeypatch.setattr(decoding, "BEAM_ROWS", 8)
    monkeypatch.setattr(decoding, "beam_search", recorded)
    assert generation.decode(tiny_model, z, DecodingConfig(beam=4, max_length=5)) == at_once
    assert max(searched) <= 8 and sum(searched) == 9 * 4


def test_a_beam_wider_than_the_vocabulary_is_refused(corpus):
    config = load_config(TINY, overrides=[f"data.train={corpus}", "tokenizer.vocab_size=60"])
    model = TextWAE(config, Tokenizer.train(toy_texts(), config.tokenizer))
    assert model.tokenizer.vocab_size < 100
    with pytest.raises(ConfigError, match=r"a beam of 100 is wider than the vocabulary "
                                          r"\(60 tokens\)"):
        generation.sample(model, 1, DecodingConfig(beam=100))


@pytest.mark.parametrize("key, value", [
    ("temperature", 1e30), ("temperature", math.nan), ("transfer_strength", 1e30),
    ("beam", 10**6), ("max_length", 10**9), ("sample_redraws", 10**6),
    ("transfer_steps", 10**6)])
def test_a_runs_generation_section_holds_the_same_limits(key, value):
    with pytest.raises(ConfigError, match=rf"generation\.{key} must lie in"):
        GenerationConfig(**{key: value}).check()
