"""The hold-out of a corpus of a few distinct texts (issue 36.6): copies of a text share a
side, the fallback that keeps both sides non-empty moves a whole text, and a corpus of one
distinct text is refused by name."""

import pytest

from textwae.data.records import Example
from textwae.data.units import coin_value, split_train_valid
from textwae.errors import DataError

SENTENCES = ["the cat sat on the mat .", "a dog ran in the park .", "birds sing at dawn .",
             "she read a long book .", "rain fell all night .", "we ate soup for lunch ."]


def repeated(times: int) -> list[Example]:
    return [Example(text) for _ in range(times) for text in SENTENCES]


@pytest.mark.parametrize("fraction", [1e-9, 0.3, 0.999])
def test_every_copy_of_a_text_falls_on_one_side(fraction):
    train, valid = split_train_valid(repeated(40), fraction, seed=1)
    train_texts, valid_texts = {ex.text for ex in train}, {ex.text for ex in valid}
    assert train_texts and valid_texts and train_texts.isdisjoint(valid_texts)
    assert len(train) == 40 * len(train_texts) and len(valid) == 40 * len(valid_texts)


def test_the_fallback_holds_out_the_text_of_the_smallest_coin_whole():
    coins = {text: coin_value("valid", 1, text) for text in SENTENCES}
    train, valid = split_train_valid(repeated(40), min(coins.values()) / 2, seed=1)
    assert [ex.text for ex in valid] == [min(coins, key=coins.get)] * 40
    assert len(train) == 200


def test_the_fallback_keeps_the_text_of_the_largest_coin_for_training():
    coins = {text: coin_value("valid", 1, text) for text in SENTENCES}
    train, _ = split_train_valid(repeated(3), 0.9999999, seed=1)
    assert [ex.text for ex in train] == [max(coins, key=coins.get)] * 3


def test_a_corpus_of_one_distinct_text_is_refused_by_name():
    with pytest.raises(DataError, match=r"1 distinct text.*data\.valid"):
        split_train_valid([Example("the same line .")] * 50, 0.05, seed=0)
