"""The word split, clean_rate and the transfer's geometric mean: values by hand."""

from __future__ import annotations

import math

import pytest

from textwae.evaluation.metrics import clean_rate, transfer_gmean, words


def test_words_lowercase_and_split_punctuation_off_words():
    assert words("Soup.") == words("soup .") == ["soup", "."]
    assert words("The soup, sadly, was COLD!") == ["the", "soup", ",", "sadly", ",", "was",
                                                   "cold", "!"]
    assert words("don't") == ["don", "'", "t"]
    assert words('"Hi," she said...') == ['"', "hi", ",", '"', "she", "said", ".", ".", "."]


def test_words_of_blank_text_is_empty_and_whitespace_only_separates():
    assert words("") == words(" \t\n ") == []
    assert words("a\tb\nc  d") == ["a", "b", "c", "d"]


def test_words_keep_digits_and_non_ascii_letters_whole():
    assert words("Zoë paid 12.50 at Café Müller") == ["zoë", "paid", "12", ".", "50", "at",
                                                      "café", "müller"]


VOCABULARY = {word for text in ["The soup was cold.", "Anna went to the park."]
              for word in words(text)}


def test_clean_rate_counts_lines_whose_words_all_occur_in_training():
    lines = ["the park was cold .",  # every word seen
             "The soup was cold.",  # case and attached punctuation do not matter
             "the soup was lukewarm .",  # one unseen word
             "the soup was cold!"]  # an unseen punctuation mark
    assert clean_rate(lines, VOCABULARY) == 0.5
    assert clean_rate(lines[:2], VOCABULARY) == 1.0
    assert clean_rate(lines[2:], VOCABULARY) == 0.0


def test_a_garbled_subword_join_is_not_clean():
    assert clean_rate(["Anna wentto the park ."], VOCABULARY) == 0.0


def test_an_empty_line_is_not_clean():
    assert clean_rate(["", "   ", "the soup ."], VOCABULARY) == pytest.approx(1 / 3)


@pytest.mark.parametrize("texts", [[], "the soup .", [None]])
def test_clean_rate_rejects_bad_input(texts):
    with pytest.raises(ValueError):
        clean_rate(texts, VOCABULARY)


def test_transfer_gmean_by_hand():
    assert transfer_gmean(1.0, 100.0) == pytest.approx(100.0)
    assert transfer_gmean(0.25, 16.0) == pytest.approx(20.0)  # sqrt(25 * 16)
    assert transfer_gmean(0.0, 80.0) == 0.0  # style not moved: nothing, however much is kept
    assert transfer_gmean(0.9, 0.0) == 0.0  # content lost: nothing, however well judged
    assert math.isfinite(transfer_gmean(0.5, 50.0))


@pytest.mark.parametrize("accuracy,bleu", [(1.5, 10.0), (-0.1, 10.0), (0.5, 101.0),
                                           (0.5, -1.0)])
def test_transfer_gmean_rejects_values_off_their_scales(accuracy, bleu):
    with pytest.raises(ValueError):
        transfer_gmean(accuracy, bleu)
