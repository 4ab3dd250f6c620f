"""Tests for textwae.metrics: each checks a value computed by hand on a tiny input."""

from __future__ import annotations

import math
import random

import pytest
import torch
from sacrebleu.metrics import BLEU

from textwae.evaluation.metrics import (
    LabelJudge,
    active_units,
    corpus_bleu,
    distinct_n,
    interpolation_report,
    mode_accuracy,
    nmi,
    perplexity,
    purity,
    self_bleu,
    thin_directions,
    transfer_gmean,
)

# ---------------------------------------------------------------------------------------- BLEU


def test_corpus_bleu_identical_is_100_and_signature_names_one_reference():
    texts = ["the cat sat on the mat", "a dog ran in the park today"]
    score, signature = corpus_bleu(texts, texts)
    assert score == 100.0  # sacrebleu's own float reads 100.00000000000004
    assert transfer_gmean(1.0, score) == 100.0  # which the range check would refuse
    assert "nrefs:1" in signature
    assert "tok:13a" in signature


def test_corpus_bleu_disjoint_is_zero():
    score, _ = corpus_bleu(["a b c d e"], ["f g h i j"])
    assert score == pytest.approx(0.0, abs=1e-9)


def test_corpus_bleu_partial_match_by_hand():
    # Precisions 4/5, 3/4, 2/3, 1/2 and equal lengths (BP = 1): BLEU = (1/5) ** (1/4).
    score, _ = corpus_bleu(["a b c d e"], ["a b c d f"])
    assert score == pytest.approx(100 * 0.2**0.25)


@pytest.mark.parametrize(
    ("hyps", "refs"),
    [([], []), (["a"], []), (["a", "b"], ["a"])],
)
def test_corpus_bleu_rejects_empty_or_mismatched(hyps, refs):
    with pytest.raises(ValueError):
        corpus_bleu(hyps, refs)


def test_self_bleu_identical_texts_is_100():
    assert self_bleu(["the cat sat on the mat"] * 4) == 100.0


def test_self_bleu_disjoint_texts_is_zero():
    assert self_bleu(["a b c d", "e f g h", "i j k l"]) == pytest.approx(0.0, abs=1e-9)


def test_self_bleu_two_texts_by_hand():
    # Each vs the other: precisions 3/4, 2/3, 1/2 and a zero 4-gram match smoothed ("exp") to
    # 1/(2*1); BLEU = (3/4 * 2/3 * 1/2 * 1/2) ** (1/4) for both texts.
    assert self_bleu(["a b c d", "a b c e"]) == pytest.approx(100 * 0.125**0.25)


def test_self_bleu_leaves_only_the_hypothesis_out():
    # A duplicate still counts as a reference for its twin: 100, 100 and 0 -> mean 200/3.
    assert self_bleu(["a b c d", "a b c d", "w x y z"]) == pytest.approx(200 / 3)
    # "a a b" vs "a b": precisions 2/3, 1/2, smoothed 1/2, BP 1 -> (1/6) ** (1/3).
    # "a b" vs "a a b": precisions 1, 1, effective order 2, BP exp(1 - 3/2).
    expected = (100 * (1 / 6) ** (1 / 3) + 100 * math.exp(-0.5)) / 2
    assert self_bleu(["a a b", "a b"]) == pytest.approx(expected)


def test_self_bleu_matches_sacrebleu_sentence_score():
    rng = random.Random(1)
    vocab = ["the", "cat", "dog", "sat", "ran", "on", "mat", "park", ",", ".", "big", "old"]
    texts = [" ".join(rng.choices(vocab, k=rng.randint(1, 12))) for _ in range(25)]
    texts += [texts[0], texts[3], "", "The cat sat."]
    bleu = BLEU(effective_order=True)
    expected = [
        bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)
    ]
    assert self_bleu(texts) == pytest.approx(sum(expected) / len(expected))


def test_self_bleu_subsample_is_seeded():
    texts = [f"w{i} w{i + 1} w{i + 2} common" for i in range(40)]
    assert self_bleu(texts, max_texts=10, seed=3) == self_bleu(texts, max_texts=10, seed=3)
    assert self_bleu(texts, max_texts=40) == self_bleu(texts, max_texts=1000)


@pytest.mark.parametrize(
    ("texts", "kwargs"), [([], {}), (["one"], {}), (["a", "b"], {"max_texts": 1})]
)
def test_self_bleu_rejects_bad_input(texts, kwargs):
    with pytest.raises(ValueError):
        self_bleu(texts, **kwargs)


# ------------------------------------------------------------------------------------ distinct


def test_distinct_n_by_hand():
    assert distinct_n(["a b a", "b c"], 1) == pytest.approx(3 / 5)  # {a, b, c} of 5 tokens
    assert distinct_n(["a b a", "b c"], 2) == pytest.approx(3 / 3)  # ab, ba, bc; none cross texts
    assert distinct_n(["a b a b", "a b"], 2) == pytest.approx(2 / 4)  # ab, ba, ab | ab
    assert distinct_n(["a b", "c"], 3) == 0.0


def test_distinct_n_rejects_bad_input():
    with pytest.raises(ValueError):
        distinct_n([], 1)
    with pytest.raises(ValueError):
        distinct_n(["a b"], 0)


# ---------------------------------------------------------------------------- purity and NMI


def test_purity_by_hand():
    # Cluster 0: a, a, b -> 2; cluster 1: b, b -> 2; cluster 2: a -> 1; total 5 of 6.
    assert purity([0, 0, 0, 1, 1, 2], ["a", "a", "b", "b", "b", "a"]) == pytest.approx(5 / 6)
    assert purity([5, 5, 9, 9], [1, 1, 2, 2]) == 1.0


def test_nmi_perfect_relabelled_and_independent():
    assert nmi([0, 0, 1, 1, 2, 2], ["c", "c", "a", "a", "b", "b"]) == pytest.approx(1.0)
    # Every cluster holds each label equally often: mutual information is exactly zero.
    assert nmi([0, 0, 1, 1], ["a", "b", "a", "b"]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("fn", [purity, nmi])
def test_cluster_scores_reject_bad_input(fn):
    with pytest.raises(ValueError):
        fn([], [])
    with pytest.raises(ValueError):
        fn([0, 1], ["a"])


# ------------------------------------------------------------------------------ active units


def test_active_units_counts_varying_dims():
    means = torch.tensor(
        [
            [0.0, 5.0, 0.0, -1.0],
            [1.0, 5.0, 0.1, 1.0],
            [0.0, 5.0, 0.0, -1.0],
            [1.0, 5.0, 0.1, 1.0],
        ]
    )
    # Unbiased variances: 1/3, 0, 0.01/3 (below 0.01), 4/3 -> two active dims.
    assert active_units(means) == 2
    assert active_units(means, threshold=0.001) == 3
    assert active_units(means, threshold=1.0) == 1


def test_active_units_rejects_bad_input():
    with pytest.raises(ValueError):
        active_units(torch.zeros(4))
    with pytest.raises(ValueError):
        active_units(torch.zeros(1, 3))
    with pytest.raises(ValueError):
        active_units(torch.tensor([[0.0], [float("nan")]]))


# -------------------------------------------------------------------------------- perplexity


def test_perplexity_uniform_over_four():
    assert perplexity(total_nll=10 * math.log(4), total_tokens=10) == pytest.approx(4.0)
    assert perplexity(total_nll=0.0, total_tokens=3) == 1.0


def test_perplexity_rejects_bad_input():
    with pytest.raises(ValueError):
        perplexity(1.0, 0)
    with pytest.raises(ValueError):
        perplexity(float("nan"), 5)


# ---------------------------------------------------------------------------- interpolation


def test_interpolation_report_by_hand():
    report = interpolation_report(
        ["a b c d", "a b y z", "a b y z", "w x y z"], start="a b c d", end="w x y z"
    )
    # "a b y z" vs either end: precisions 2/4, 1/3, then zero 3- and 4-gram matches smoothed
    # ("exp") to 1/(2*2) and 1/(4*1): BLEU = (1/2 * 1/3 * 1/4 * 1/4) ** (1/4).
    mid = 100 * (1 / 96) ** 0.25
    assert report["distinct"] == 3
    assert report["bleu_to_start"] == pytest.approx([100.0, mid, mid, 0.0])
    assert report["bleu_to_end"] == pytest.approx([0.0, mid, mid, 100.0])
    assert report["start_falling"] is True
    assert report["end_rising"] is True


def test_interpolation_report_collapsed_path():
    report = interpolation_report(["a b c d"] * 3, start="a b c d", end="w x y z")
    assert report["distinct"] == 1
    assert report["start_falling"] is False
    assert report["end_rising"] is False


def test_interpolation_report_rejects_short_path():
    with pytest.raises(ValueError):
        interpolation_report(["a b"], start="a b", end="c d")


# ------------------------------------------------------------------------------------- judge

TRAIN = [
    ("the striker scored a goal in the match", "sports"),
    ("the team won the football match", "sports"),
    ("a goal from the striker won the game", "sports"),
    ("the referee stopped the football game", "sports"),
    ("she baked bread with flour and butter", "food"),
    ("the soup needs salt and pepper", "food"),
    ("fresh bread and butter for breakfast", "food"),
    ("add pepper and flour to the soup", "food"),
]


@pytest.fixture(scope="module")
def judge() -> LabelJudge:
    return LabelJudge().fit([t for t, _ in TRAIN], [y for _, y in TRAIN])


def test_label_judge_separates_held_out_toy_examples(judge):
    held_out = ["the striker won the football game", "butter and flour in the soup"]
    assert judge.predict(held_out) == ["sports", "food"]
    assert judge.accuracy(held_out, ["sports", "food"]) == 1.0
    assert judge.accuracy(held_out, ["food", "food"]) == 0.5
    assert sorted(judge.classes) == ["food", "sports"]


def test_mode_accuracy_shares(judge):
    samples = {
        "food": ["bread with butter", "pepper in the soup", "the striker scored a goal"],
        "sports": ["the football match", "a goal in the game"],
    }
    assert mode_accuracy(samples, judge) == pytest.approx({"food": 2 / 3, "sports": 1.0})


def test_judge_rejects_bad_input(judge):
    with pytest.raises(ValueError):
        LabelJudge().predict(["not fitted yet"])
    with pytest.raises(ValueError):
        LabelJudge().fit(["one label only", "still one"], ["x", "x"])
    with pytest.raises(ValueError):
        LabelJudge().fit(["a text"], ["x", "y"])
    with pytest.raises(ValueError):
        judge.accuracy(["a"], ["food", "sports"])
    with pytest.raises(ValueError):
        mode_accuracy({}, judge)
    with pytest.raises(ValueError):
        mode_accuracy({"food": []}, judge)
    with pytest.raises(ValueError):
        mode_accuracy({"music": ["a song"]}, judge)


# --------------------------------------------------------------------------- thin directions


def test_thin_directions_are_the_share_of_directions_where_codes_barely_vary():
    generator = torch.Generator().manual_seed(0)
    codes = torch.randn(2000, 8, generator=generator)
    assert thin_directions(codes) == 0.0  # the prior's own spread everywhere
    squashed = codes * torch.tensor([1.0] * 6 + [0.3] * 2)  # variance 0.09 in two dims
    assert thin_directions(squashed) == 0.25
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    assert thin_directions(squashed @ rotation) == 0.25  # directions, not axes
    assert thin_directions(squashed, threshold=0.05) == 0.0


def test_thin_directions_refuses_too_few_examples_and_bad_input():
    with pytest.raises(ValueError, match="at least 10 examples per latent dimension"):
        thin_directions(torch.randn(79, 8))
    with pytest.raises(ValueError, match="threshold"):
        thin_directions(torch.randn(100, 2), threshold=0.0)
    with pytest.raises(ValueError, match="NaN"):
        thin_directions(torch.full((100, 2), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        thin_directions(torch.zeros(100))
