"""`evaluate_stories` on stand-in story generators: figures that count what sampled stories
say, against the held-out stories'."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EMBEDDED_CORPUS, toy_stories
from textwae.data.records import Example
from textwae.data.units import split_sentences
from textwae.errors import EvaluationWarning
from textwae.evaluation.stories import evaluate_stories
from textwae.generation.stories import Story, StoryGenerator

pytestmark = pytest.mark.slow  # fits the n-gram and coherence judges

AGREEING = ["Max fixed the bike.", "He smiled at the mechanic."]
CLASHING = ["Max fixed the bike.", "She smiled at the mechanic."]


@pytest.fixture(scope="module")
def corpus() -> list[Example]:
    with open(EMBEDDED_CORPUS, encoding="utf-8") as handle:
        return [Example(json.loads(line)["text"], None) for line in handle][:600]


def generator(samples: list[list[str]]) -> StoryGenerator:
    """Reconstructions that give each story back, and `samples` in turn as the samples."""
    return StoryGenerator(
        reconstruct=lambda texts: [Story(split_sentences(text), 0) for text in texts],
        sample=lambda n, mode, seed: [Story(samples[i % len(samples)], 0) for i in range(n)],
        labels=None)


def test_pronoun_clashes_count_the_sampled_stories_whose_pronoun_contradicts_their_cast(
        corpus, tmp_path):
    figures = evaluate_stories(generator([AGREEING, CLASHING, AGREEING, AGREEING]), corpus[:40],
                               corpus[40:], n_samples=8, judge_cache=tmp_path)
    assert figures["samples"]["pronoun_clashes"] == 0.25
    # the corpus's own stories: a "she" after a man named alone is rare there
    assert 0 <= figures["real_pronoun_clashes"] < 0.1
    assert figures["bleu"] == 100  # the stand-in gives every story back


def test_pronoun_clashes_are_left_out_with_a_warning_where_no_word_is_a_name(tmp_path):
    stories = toy_stories()  # their names are written in lower case
    with pytest.warns(EvaluationWarning, match="pronoun_clashes left out"):
        figures = evaluate_stories(generator([CLASHING]), stories[:40], stories[40:],
                                   n_samples=4, judge_cache=tmp_path)
    assert "pronoun_clashes" not in figures["samples"]
    assert "real_pronoun_clashes" not in figures
