from pathlib import Path

import pytest

from tests.conftest import TINY, toy_texts
from textwae.config.loading import load_config
from textwae.config.schema import TokenizerConfig
from textwae.text.token_cache import TokenSequences, cache_key, sequence_lengths, tokenize
from textwae.text.tokenizers import Tokenizer
from textwae.training.pipeline import train

MAX_LENGTH = 12  # short enough that some units are cut


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(toy_texts(), TokenizerConfig(vocab_size=120))


def spy_on_encoding(tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the texts the tokenizer encodes from now on."""
    calls: list[int] = []
    encode_batch = tokenizer.encode_batch

    def counted(texts, max_length=None):
        calls.append(len(texts))
        return encode_batch(texts, max_length)

    monkeypatch.setattr(tokenizer, "encode_batch", counted)
    return calls


def test_without_a_cache_the_ids_are_the_tokenizers_lists(tokenizer, tmp_path):
    texts = toy_texts(30)
    assert tokenize(texts, tokenizer, MAX_LENGTH) == tokenizer.encode_batch(texts, MAX_LENGTH)
    assert not any(tmp_path.iterdir())


def test_the_cache_is_written_once_and_reused_without_the_tokenizer(tokenizer, tmp_path,
                                                                    monkeypatch):
    texts = toy_texts(50)
    expected = tokenizer.encode_batch(texts, MAX_LENGTH)
    calls = spy_on_encoding(tokenizer, monkeypatch)

    first = tokenize(texts, tokenizer, MAX_LENGTH, tmp_path)
    assert sum(calls) == len(texts)
    folders = list(tmp_path.iterdir())
    assert [f.name for f in folders] == [f"tokens-{cache_key(texts, tokenizer, MAX_LENGTH)}"]

    second = tokenize(texts, tokenizer, MAX_LENGTH, tmp_path)
    assert sum(calls) == len(texts)  # read back, not tokenised again
    assert list(tmp_path.iterdir()) == folders
    for sequences in (first, second):
        assert isinstance(sequences, TokenSequences)
        assert list(sequences) == expected
        assert sequence_lengths(sequences) == [len(ids) for ids in expected]
        # read from the memory-mapped Arrow files inside the cache folder
        files = [Path(entry["filename"]) for entry in sequences.dataset.cache_files]
        assert files and all(folders[0] in path.parents for path in files)
    assert second[-1] == expected[-1] and second[3:5] == expected[3:5]
    with pytest.raises(IndexError):
        second[len(texts)]


def test_a_changed_text_tokenizer_or_length_gives_a_new_key(tokenizer, tmp_path):
    texts = toy_texts(40)
    other_tokenizer = Tokenizer.train(toy_texts(), TokenizerConfig(vocab_size=2000))
    assert other_tokenizer.fingerprint() != tokenizer.fingerprint()
    changed = [*texts[:-1], texts[-1] + " again"]
    keys = {cache_key(texts, tokenizer, MAX_LENGTH), cache_key(changed, tokenizer, MAX_LENGTH),
            cache_key(texts, other_tokenizer, MAX_LENGTH), cache_key(texts, tokenizer, 20),
            cache_key(["ab", "c"], tokenizer, MAX_LENGTH),
            cache_key(["a", "bc"], tokenizer, MAX_LENGTH)}
    assert len(keys) == 6
    assert cache_key(list(texts), tokenizer, MAX_LENGTH) == cache_key(texts, tokenizer,
                                                                        MAX_LENGTH)

    tokenize(texts, tokenizer, MAX_LENGTH, tmp_path)
    ids = tokenize(changed, tokenizer, MAX_LENGTH, tmp_path)
    other = tokenize(texts, other_tokenizer, MAX_LENGTH, tmp_path)
    assert len(list(tmp_path.iterdir())) == 3
    assert list(ids) == tokenizer.encode_batch(changed, MAX_LENGTH)
    assert list(other) == other_tokenizer.encode_batch(texts, MAX_LENGTH)


@pytest.mark.slow
def test_training_tokenises_through_the_cache(corpus, tmp_path):
    cache = tmp_path / "cache"
    config = load_config(TINY, overrides=[f"data.train={corpus}", f"data.cache_dir={cache}",
                                          "train.max_steps=2"])
    train(config, tmp_path / "run")
    assert len(list(cache.glob("tokens-*"))) == 2  # the training and the validation split
