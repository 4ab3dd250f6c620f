"""`evaluate_stories` on stand-in story levels: figures that count what sampled stories
say, against the held-out stories'."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import EMBEDDED_CORPUS, toy_stories
from textwae.config.schema import GenerationConfig, PriorConfig
from textwae.data.records import Example
from textwae.data.units import split_sentences
from textwae.errors import EvaluationWarning
from textwae.evaluation.stories import evaluate_stories
from textwae.generation import Story
from textwae.objectives.priors import MixtureOfGaussians

pytestmark = pytest.mark.slow  # fits the n-gram and coherence judges

AGREEING = ["Max fixed the bike.", "He smiled at the mechanic."]
CLASHING = ["Max fixed the bike.", "She smiled at the mechanic."]


@pytest.fixture(scope="module")
def corpus() -> list[Example]:
    with open(EMBEDDED_CORPUS, encoding="utf-8") as handle:
        return [Example(json.loads(line)["text"], None) for line in handle][:600]


class StandIn:
    """A story level that reconstructs each story as it was given and samples `samples` in
    turn. An encoded text's code is TEXT_CODES + its index among the texts encoded, far from
    every prior sample, so that decoding tells the two apart."""

    TEXT_CODES = 1000.0

    def __init__(self, samples: list[list[str]]) -> None:
        self.prior = MixtureOfGaussians(PriorConfig(components=2), 1)
        self.labels, self.settings = None, GenerationConfig(sample_redraws=0)
        self.samples, self.encoded, self.sampled = samples, [], 0

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.encoded += texts
        first = self.TEXT_CODES + len(self.encoded) - len(texts)
        return torch.arange(first, first + len(texts))[:, None]

    def decode(self, codes, decoding, generator) -> list[Story]:
        return [Story(split_sentences(self.encoded[int(code - self.TEXT_CODES)]))
                if code >= self.TEXT_CODES else self._next_sample() for code in codes[:, 0]]

    def _next_sample(self) -> Story:
        self.sampled += 1
        return Story(self.samples[(self.sampled - 1) % len(self.samples)])

    def text(self, output: Story) -> str:
        return output.text

    def casts(self, texts: list[str]) -> None:
        return None

    def fill_names(self, outputs: list[Story], generator, casts) -> list[Story]:
        return outputs


def test_pronoun_clashes_count_the_sampled_stories_whose_pronoun_contradicts_their_cast(
        corpus, tmp_path):
    figures = evaluate_stories(StandIn([AGREEING, CLASHING, AGREEING, AGREEING]), corpus[:40],
                               corpus[40:], n_samples=8, judge_cache=tmp_path, lm_judge=False)
    assert figures["samples"]["pronoun_clashes"] == 0.25
    # the corpus's own stories: a "she" after a man named alone is rare there
    assert 0 <= figures["real_pronoun_clashes"] < 0.1
    assert figures["bleu"] == 100  # the stand-in gives every story back


def test_pronoun_clashes_are_left_out_with_a_warning_where_no_word_is_a_name(tmp_path):
    stories = toy_stories()  # their names are written in lower case
    with pytest.warns(EvaluationWarning, match="pronoun_clashes left out"):
        figures = evaluate_stories(StandIn([CLASHING]), stories[:40], stories[40:],
                                   n_samples=4, judge_cache=tmp_path, lm_judge=False)
    assert "pronoun_clashes" not in figures["samples"]
    assert "real_pronoun_clashes" not in figures


def test_sampled_stories_are_read_by_the_lm_judge_and_counted_as_copies(corpus, tmp_path,
                                                                         smollm2):
    copied = split_sentences(corpus[40].text)  # a training story, told again
    new = ["A violet kettle sang over the harbour.", "Nobody had read the letter."]
    figures = evaluate_stories(StandIn([copied, new]), corpus[:40], corpus[40:], n_samples=8,
                               judge_cache=tmp_path, lm_judge=str(smollm2))
    samples = figures["samples"]
    assert samples["copy_rate"] == 0.5  # four of the eight stories
    assert samples["sentence_copy_rate"] == pytest.approx(len(copied) / (len(copied) + 2))
    assert 0 <= samples["lm_fluent"] <= 1 and samples["lm_ppl_ratio"] > 0
    judge = figures["lm_judge"]  # read against the held-out stories' sentences
    assert judge["model"] == str(smollm2)
    assert judge["real_lines"] == sum(len(split_sentences(ex.text)) for ex in corpus[:40])
