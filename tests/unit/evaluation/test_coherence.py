"""The coherence judge: corruptions that break order or consistency and nothing else, a judge
that tells real stories from them on held-out stories, the same figures for the same seed,
and bad input refused with `DataError`."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from tests.conftest import EMBEDDED_CORPUS
from textwae.data.units import split_sentences
from textwae.errors import DataError
from textwae.evaluation.coherence import CoherenceJudge, shuffled, swapped


@pytest.fixture(scope="module")
def stories() -> list[list[str]]:
    """The embedded corpus's stories of three sentences or more (4,430 of its 6,000)."""
    with open(EMBEDDED_CORPUS, encoding="utf-8") as handle:
        split = [split_sentences(json.loads(line)["text"]) for line in handle]
    return [story for story in split if len(story) >= 3]


@pytest.fixture(scope="module")
def judge(stories) -> CoherenceJudge:
    """A judge fit on the first 1,000 stories."""
    return CoherenceJudge.fit(stories[:1000])


def test_shuffled_keeps_the_sentences_and_changes_their_order(stories):
    rng = random.Random(0)
    for story in stories[:300]:
        copy = shuffled(story, rng)
        assert Counter(copy) == Counter(story)
        assert copy != story
    assert shuffled(["A.", "B."], rng) == ["B.", "A."]  # the one other order of two


def test_swapped_changes_one_sentence_for_another_storys(stories):
    rng = random.Random(0)
    pool = stories[:300]
    positions = Counter()
    for index, story in enumerate(pool):
        copy = swapped(story, pool, rng)
        changed = [i for i, (a, b) in enumerate(zip(story, copy, strict=True)) if a != b]
        assert len(changed) == 1
        positions[changed[0]] += 1
        assert any(copy[changed[0]] in other for k, other in enumerate(pool) if k != index)
    assert set(positions) == {0, 1, 2, 3, 4}  # any position, the last of 5-sentence ones too


def test_swapped_takes_the_same_position_when_the_donor_has_one():
    rng = random.Random(0)
    for _ in range(20):
        copy = swapped(["a1.", "a2.", "a3."], [["b1.", "b2.", "b3."]], rng)
        changed = [i for i, s in enumerate(copy) if not s.startswith("a")]
        assert copy[changed[0]] == f"b{changed[0] + 1}."
    assert swapped(["a1.", "a2."], [["b1."]], random.Random(1)) in (["b1.", "a2."],
                                                                  ["a1.", "b1."])


@pytest.mark.slow  # fits a judge: seconds
def test_the_judge_tells_held_out_real_stories_from_corrupted_ones(judge, stories):
    # Measured (1,000 stories to fit, the next 500 held out): accuracy 0.70 (balanced), rate
    # 0.79 on real, 0.11 on shuffled, 0.65 on swapped copies. Swaps, a sentence of a story
    # from the same templates, are the hard part.
    held_out = stories[1000:1500]
    rng = random.Random(1)
    corrupt = [shuffled(s, rng) for s in held_out] + [swapped(s, held_out, rng) for s in held_out]
    real_rate = judge.rate(held_out)
    assert real_rate - judge.rate(corrupt) >= 0.3
    assert real_rate - judge.rate(corrupt[:len(held_out)]) >= 0.5  # shuffles: the easy part
    assert judge.accuracy(held_out) >= 0.65


@pytest.mark.slow  # fits a judge: seconds
def test_verdicts_are_probabilities_cut_at_a_half(judge, stories):
    probabilities = judge.probabilities(stories[1000:1100])
    assert probabilities.shape == (100,)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert judge.coherent(stories[1000:1100]) == [bool(p >= 0.5) for p in probabilities]
    assert judge.rate(stories[1000:1100]) == pytest.approx(np.mean(probabilities >= 0.5))


@pytest.mark.slow  # fits a judge: seconds
def test_the_same_seed_gives_the_same_judge(stories):
    train, held_out = stories[:100], stories[1000:1100]
    first = CoherenceJudge.fit(train, seed=3)
    again = CoherenceJudge.fit(train, seed=3)
    other = CoherenceJudge.fit(train, seed=4)
    assert np.array_equal(first.probabilities(held_out), again.probabilities(held_out))
    assert not np.array_equal(first.probabilities(held_out), other.probabilities(held_out))
    assert first.accuracy(held_out, seed=5) == again.accuracy(held_out, seed=5)


@pytest.mark.slow  # fits a judge: seconds
def test_bad_input_raises_data_error(judge, stories):
    with pytest.raises(DataError, match="at least 20 stories"):
        CoherenceJudge.fit(stories[:19] + [["One sentence only."]] * 50)
    with pytest.raises(DataError, match="empty"):
        judge.probabilities([stories[0], []])
    with pytest.raises(DataError, match="empty"):
        judge.probabilities([["  "]])
    with pytest.raises(DataError, match="list of sentences"):
        judge.probabilities(["A story as one string. It is not split."])
    with pytest.raises(DataError, match="no stories"):
        judge.rate([])
    with pytest.raises(DataError, match="two different sentences"):
        shuffled(["Same.", "Same."], random.Random(0))
    with pytest.raises(DataError, match="different sentence"):
        swapped(["A.", "B."], [["A.", "B."]], random.Random(0))
