"""The n-gram judge: a distribution in every context, fluent text scored above broken text,
unknown words kept finite, and the cache written once per corpus, never pickled."""

from __future__ import annotations

import json
import math
import pickle
import random
import struct

import pytest

from tests.conftest import EMBEDDED_CORPUS, toy_texts
from textwae.errors import EvaluationWarning
from textwae.evaluation import judges
from textwae.evaluation.judges import (
    BOS,
    UNK,
    NgramJudge,
    NgramSettings,
    corpus_key,
    load_or_fit,
)
from textwae.evaluation.metrics import words

TOY = ["the cat sat on the mat .", "the dog sat on the log .", "a cat ran .", "",
       "the cat ran to the dog ."]


@pytest.fixture(scope="module")
def stories() -> tuple[list[str], list[str]]:
    """1,000 stories of the embedded corpus to train on and 200 others held out."""
    with open(EMBEDDED_CORPUS, encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for _, line in zip(range(1200), handle, strict=False)]
    return texts[:1000], texts[1000:]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_gives_a_distribution_over_the_words_end_and_unk(order):
    judge = NgramJudge.fit(TOY, NgramSettings(order=order))
    assert judge.outcomes[-2:] == ["</s>", UNK] and len(judge.outcomes) == 13  # 11 words
    seen = {tuple(words(text)[max(0, i - order + 1) : i]) for text in TOY
            for i in range(len(words(text)) + 1)}
    unseen = {("zebra",), ("the", "zebra"), ("zebra", "the"), (BOS, "dog"), ("mat", "mat", ".")}
    for context in sorted(seen | unseen | {()}):
        total = sum(judge.prob(word, context) for word in judge.outcomes)
        assert total == pytest.approx(1.0, abs=1e-12), context
        assert all(judge.prob(word, context) > 0 for word in judge.outcomes)


def test_a_unigram_probability_by_hand():
    # words a, a, b and one line end: counts 2, 1, 1 over 4; 4 outcomes (a, b, </s>, <unk>)
    judge = NgramJudge.fit(["a a b"], NgramSettings(order=1, discount=0.75))
    floor = 0.75 * 3 / 4 * (1 / 4)  # discount * types / total * uniform
    assert judge.prob("a") == pytest.approx((2 - 0.75) / 4 + floor)
    assert judge.prob("b") == pytest.approx((1 - 0.75) / 4 + floor)
    assert judge.prob("never seen") == judge.prob(UNK) == pytest.approx(floor)


def test_a_trigram_backs_off_in_an_unseen_context():
    judge = NgramJudge.fit(TOY)
    # "the cat" is seen (twice, followed by "sat" and "ran"); "zebra cat" never is
    assert judge.prob("sat", ("zebra", "cat")) == judge.prob("sat", ("<unk>", "cat"))
    assert judge.prob("sat", ("the", "cat")) > judge.prob("mat", ("the", "cat"))


def test_held_out_text_scores_below_shuffled_words_and_random_tokens(stories):
    train, held_out = stories
    judge = NgramJudge.fit(train)
    rng = random.Random(0)
    shuffled = []
    for text in held_out:
        tokens = text.split()
        rng.shuffle(tokens)
        shuffled.append(" ".join(tokens))
    letters = "abcdefghijklmnopqrstuvwxyz"
    noise = [" ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 8)))
                      for _ in range(len(text.split()))) for text in held_out]
    real, broken, random_tokens = (judge.perplexity(t) for t in (held_out, shuffled, noise))
    assert 1 < real < broken < random_tokens
    assert math.isfinite(random_tokens)  # every token unknown: the <unk> floor keeps it finite
    assert real < 0.5 * broken  # not a near tie


def test_perplexity_of_an_empty_line_is_that_of_its_line_end():
    judge = NgramJudge.fit(TOY)
    assert judge.perplexity([""]) == pytest.approx(1 / judge.prob("</s>", (BOS, BOS)))
    with pytest.raises(ValueError):
        judge.perplexity([])


@pytest.mark.parametrize("bad", [{"order": 0}, {"discount": 0.0}, {"discount": 1.0}])
def test_settings_reject_values_without_a_distribution(bad):
    with pytest.raises(ValueError):
        NgramSettings(**bad)


def test_fit_rejects_no_texts():
    with pytest.raises(ValueError):
        NgramJudge.fit([])


# ------------------------------------------------------------------------------------- cache


def test_the_cache_is_written_once_and_read_back(tmp_path, monkeypatch):
    texts = toy_texts(60)
    first = load_or_fit(texts, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"ngram-{corpus_key(texts, NgramSettings())}.safetensors"]
    stamp = files[0].stat().st_mtime_ns

    def no_fit(*args, **kwargs):
        raise AssertionError("the cached judge was fitted again")

    monkeypatch.setattr(NgramJudge, "fit", no_fit)
    again = load_or_fit(list(reversed(texts)), cache_dir=tmp_path)  # order does not matter
    assert files[0].stat().st_mtime_ns == stamp and list(tmp_path.iterdir()) == files
    assert again.vocabulary == first.vocabulary and again.tables == first.tables
    probe = ["anna went to the calm cafe .", "zebra"]
    assert again.perplexity(probe) == first.perplexity(probe)


def test_another_corpus_or_settings_get_another_file(tmp_path):
    texts = toy_texts(60)
    load_or_fit(texts, cache_dir=tmp_path)
    load_or_fit([*texts[:-1], texts[-1] + " again"], cache_dir=tmp_path)
    load_or_fit(texts, NgramSettings(order=2), cache_dir=tmp_path)
    load_or_fit(texts, NgramSettings(discount=0.5), cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 4
    assert corpus_key(texts, NgramSettings()) != corpus_key(texts[:-1], NgramSettings())
    assert corpus_key(["ab", "c"], NgramSettings()) != corpus_key(["a", "bc"], NgramSettings())


def test_the_cached_file_is_safetensors_not_a_pickle(tmp_path):
    load_or_fit(TOY, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    data = path.read_bytes()
    assert not data.startswith(b"\x80")  # every pickle protocol >= 2 starts with PROTO
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    (length,) = struct.unpack("<Q", data[:8])  # safetensors: header length, then JSON
    header = json.loads(data[8 : 8 + length])
    assert header["__metadata__"]["format"] == judges.FORMAT
    assert json.loads(header["__metadata__"]["vocabulary"]) == NgramJudge.fit(TOY).vocabulary
    assert {name for name in header if name != "__metadata__"} == {"order_1", "order_2",
                                                                   "order_3"}


def test_an_unreadable_cache_file_is_fitted_again_and_replaced(tmp_path):
    path = tmp_path / f"ngram-{corpus_key(TOY, NgramSettings())}.safetensors"
    path.write_bytes(b"not a judge")
    with pytest.warns(EvaluationWarning, match="unreadable"):
        judge = load_or_fit(TOY, cache_dir=tmp_path)
    assert NgramJudge.load(path).tables == judge.tables == NgramJudge.fit(TOY).tables


def test_a_file_of_another_key_is_refused(tmp_path):
    path = tmp_path / "judge.safetensors"
    NgramJudge.fit(TOY).save(path, "some-key")
    with pytest.raises(ValueError, match="another corpus"):
        NgramJudge.load(path, "other-key")


def test_without_a_cache_folder_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    load_or_fit(TOY)
    assert list(tmp_path.iterdir()) == []
