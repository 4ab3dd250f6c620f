"""A coherence judge for stories: does a list of sentences read as one story, in its order?

It shares nothing with the project's models, so its verdict on generated stories is not biased
by the generator. It learns from real stories (coherent) against corrupted copies of them
(incoherent): `shuffled` (the same sentences in another order) and `swapped` (one sentence
taken from another story). A bag of words cannot tell a story from its shuffle, so the
features see order and consistency across sentences: words by sentence position, how well
each sentence's words go with the rest of the story (co-occurrence counts of the training
stories), and numeric cues (word overlap between sentences, names of the first sentence
recurring, pronouns before any name, relative sentence lengths). Words are `metrics.words`,
the project's one word split. It was trained on real sentences only: read its verdict on
garbled text beside a fluency figure, not alone.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from textwae.errors import DataError
from textwae.evaluation.metrics import words

__all__ = ["CoherenceJudge", "shuffled", "swapped"]

MIN_FIT_STORIES = 20  # stories of >= 2 sentences below which the judge learns mostly noise
REGULARISATION = 0.1  # inverse L2 strength: words by position overfit at 1.0
N_FEATURES = 2**20  # hashed feature space: collisions stay rare for corpora of 10^4 stories

# Function words: left out of the overlap and pair features, whose signal is shared content.
STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "so", "of", "to", "in", "on", "at", "by", "for", "with",
    "from", "as", "into", "about", "up", "out", "over", "after", "before", "then", "than", "that",
    "this", "these", "those", "it", "its", "is", "was", "were", "be", "been", "being", "are",
    "am", "has", "had", "have", "do", "did", "does", "not", "no", "very", "just", "all", "some",
    "any", "there", "here", "when", "while", "what", "which", "who", "his", "her", "him", "he",
    "she", "they", "them", "their", "we", "us", "our", "you", "your", "i", "me", "my", "one"
})
PRONOUNS = frozenset({"he", "she", "they", "him", "her", "them", "his", "their"})


def shuffled(story: Sequence[str], rng: random.Random) -> list[str]:
    """The sentences of `story` in another order, never the original one: its order is what a
    shuffle must break. A story whose sentences are all equal (or of one sentence) has no
    other order, so it raises `DataError`."""
    story = _checked(story)
    if len(set(story)) < 2:
        raise DataError(f"a story needs two different sentences to be shuffled, got {story!r}")
    order = list(story)
    while order == story:
        rng.shuffle(order)
    return order


def swapped(story: Sequence[str], others: Sequence[Sequence[str]],
            rng: random.Random) -> list[str]:
    """`story` with one sentence (at a random position) replaced by another story's sentence at
    the same position, else by a random sentence of it: the result reads well sentence by
    sentence and is inconsistent only across sentences.

    The first donor is a random one of `others`; donors whose sentence equals the replaced one
    are passed over (so `story` itself, if among `others`, never donates). `DataError` when no
    story of `others` has a different sentence to give.
    """
    story = _checked(story)
    position = rng.randrange(len(story))
    start = rng.randrange(len(others)) if others else 0
    for offset in range(len(others)):
        donor = others[(start + offset) % len(others)]
        if not donor:
            continue
        sentence = donor[position] if position < len(donor) else rng.choice(donor)
        if sentence != story[position]:
            return [*story[:position], sentence, *story[position + 1:]]
    raise DataError("no other story has a different sentence to swap in")


@dataclass
class CoherenceJudge:
    """Logistic regression over hashed order features and numeric cross-sentence cues."""

    counts: Cooccurrence  # of the real stories it was fit on
    classifier: Any  # fitted sklearn LogisticRegression; label 1 = coherent

    @classmethod
    def fit(cls, stories: Sequence[Sequence[str]], seed: int = 0) -> CoherenceJudge:
        """Train on real stories (label coherent) vs one shuffled and one swapped copy of each
        (incoherent). Only stories of >= 2 sentences count: a single sentence has no order
        and no other sentence to agree with. Classes are weighted to balance, so a
        probability of 0.5 separates them."""
        import scipy.sparse
        from sklearn.linear_model import LogisticRegression

        texts, _ = _labelled(stories, seed, MIN_FIT_STORIES, "fit")
        # Cross-fitted: each half's stories are featured with the other half's counts, since a
        # story's own counts would make its real order look more coherent than any unseen one.
        triples = [texts[i:i + 3] for i in range(0, len(texts), 3)]
        halves = [[s for t in triples[k::2] for s in t] for k in (0, 1)]
        halves_counts = [Cooccurrence.count([t[0] for t in triples[k::2]]) for k in (0, 1)]
        features = scipy.sparse.vstack([_features(halves[k], halves_counts[1 - k]) for k in (0, 1)])
        half_labels = [label for k in (0, 1) for label in [1, 0, 0] * len(triples[k::2])]
        classifier = LogisticRegression(C=REGULARISATION, class_weight="balanced", max_iter=2000)
        classifier.fit(features, half_labels)
        return cls(Cooccurrence.count(texts[::3]), classifier)

    def probabilities(self, stories: Sequence[Sequence[str]]) -> np.ndarray:
        """P(coherent) for each story, as a float array in story order."""
        checked = [_checked(story, f"stories[{i}]") for i, story in enumerate(_listed(stories))]
        if not checked:
            raise DataError("no stories to judge")
        coherent_column = list(self.classifier.classes_).index(1)
        return self.classifier.predict_proba(_features(checked, self.counts))[:, coherent_column]

    def coherent(self, stories: Sequence[Sequence[str]]) -> list[bool]:
        """The verdict per story: P(coherent) >= 0.5."""
        return [bool(p >= 0.5) for p in self.probabilities(stories)]

    def rate(self, stories: Sequence[Sequence[str]]) -> float:
        """The share of stories called coherent."""
        verdicts = self.coherent(stories)
        return sum(verdicts) / len(verdicts)

    def accuracy(self, stories: Sequence[Sequence[str]], seed: int = 0) -> float:
        """On held-out real stories and their corruptions (as fit builds them): the judge's
        accuracy, a figure to report beside its verdicts.

        It is balanced accuracy, the mean of the share of real stories called coherent and of
        corrupted ones called incoherent: there are two corruptions per real story, so a judge
        that calls everything incoherent would otherwise score 2/3.
        """
        texts, labels = _labelled(stories, seed, 2, "accuracy")
        verdicts = self.coherent(texts)
        real = [v for v, label in zip(verdicts, labels, strict=True) if label == 1]
        corrupt = [not v for v, label in zip(verdicts, labels, strict=True) if label == 0]
        return (sum(real) / len(real) + sum(corrupt) / len(corrupt)) / 2


def _listed(stories: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """`stories` as a list; a single story or string in its place is a `DataError`."""
    if isinstance(stories, str) or (stories and isinstance(stories[0], str)):
        raise DataError("stories must be a list of stories, each a list of sentences")
    return list(stories)


def _checked(story: Sequence[str], name: str = "story") -> list[str]:
    """`story` as a list of sentence strings; a bare string or an empty story is a
    `DataError`, since neither has sentences to judge."""
    if isinstance(story, str):
        raise DataError(f"{name} must be a list of sentences, not one string")
    sentences = list(story)
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise DataError(f"{name}[{i}] must be a string, got {type(sentence).__name__}")
    if not any(sentence.strip() for sentence in sentences):
        raise DataError(f"{name} is empty: it has no sentence to judge")
    return sentences


def _labelled(stories: Sequence[Sequence[str]], seed: int, minimum: int,
              purpose: str) -> tuple[list[list[str]], list[int]]:
    """Each story of >= 2 sentences (label 1), a shuffled and a swapped copy of it (label 0)."""
    usable = [_checked(story, f"stories[{i}]") for i, story in enumerate(_listed(stories))]
    usable = [story for story in usable if len(story) >= 2 and len(set(story)) >= 2]
    if len(usable) < minimum:
        raise DataError(f"CoherenceJudge.{purpose} needs at least {minimum} stories of two or "
                        f"more different sentences, got {len(usable)}")
    rng = random.Random(seed)
    texts: list[list[str]] = []
    labels: list[int] = []
    for story in usable:
        texts += [story, shuffled(story, rng), swapped(story, usable, rng)]
        labels += [1, 0, 0]
    return texts, labels


def _content_words(sentence: str) -> set[str]:
    """The `words` of a sentence that carry content: no punctuation, no function words."""
    return {w for w in words(sentence) if w.isalnum() and w not in STOPWORDS}


@dataclass
class Cooccurrence:
    """In how many stories each content word, and each pair of words in different sentences,
    occurs: which words belong in one story, learnt from real ones."""

    stories: int
    singles: Counter[str]
    pairs: Counter[tuple[str, str]]

    @classmethod
    def count(cls, stories: Sequence[Sequence[str]]) -> Cooccurrence:
        """Counts over `stories`, each word and pair once per story."""
        singles: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for story in stories:
            content = [_content_words(sentence) for sentence in story]
            singles.update(set().union(*content))
            pairs.update({(min(a, b), max(a, b)) for i, left in enumerate(content)
                          for right in content[i + 1:] for a in left for b in right if a != b})
        return cls(len(stories), singles, pairs)

    def association(self, sentence: set[str], rest: set[str]) -> tuple[float, float]:
        """How well a sentence's words go with the rest of its story: the mean pointwise mutual
        information (smoothed) over its word pairs, and the mean over its words of the best
        partner's. (0, 0) when either side has no content words."""
        if not sentence or not rest:
            return 0.0, 0.0
        best = []
        total = 0.0
        for a in sentence:
            scores = [math.log((self.pairs[(a, b) if a < b else (b, a)] + 0.1) * self.stories
                               / ((self.singles[a] + 1) * (self.singles[b] + 1)))
                      for b in rest if b != a]
            if scores:
                best.append(max(scores))
                total += sum(scores) / len(scores)
        return (total / len(best), float(np.mean(best))) if best else (0.0, 0.0)


def _features(stories: Sequence[Sequence[str]], counts: Cooccurrence) -> Any:
    """The hashed feature matrix (sparse, one row per story) of `_story_features`."""
    from sklearn.feature_extraction import FeatureHasher

    hasher = FeatureHasher(n_features=N_FEATURES, input_type="pair", alternate_sign=False)
    return hasher.transform(_story_features(story, counts) for story in stories)


def _bucket(index: int, count: int) -> str:
    """Where a sentence sits: first, last or middle (a lone sentence is the first)."""
    return "first" if index == 0 else "last" if index == count - 1 else "mid"


def _jaccard(a: set[str], b: set[str]) -> float:
    """Word overlap of two sentences; 0 when both have no content words."""
    return len(a & b) / len(a | b) if a | b else 0.0


def _names(sentence: str) -> set[str]:
    """Capitalised words after a sentence's first word: names, in English stories."""
    return {token.strip(".,;:!?\"'()").lower() for token in sentence.split()[1:]
            if token[:1].isupper() and token.strip(".,;:!?\"'()").isalpha()}


def _story_features(story: Sequence[str], counts: Cooccurrence) -> Iterator[tuple[str, float]]:
    """(name, value) pairs of one story's features, for `FeatureHasher`.

    Hashed: each word with its sentence's position bucket, the first word of each sentence
    with its bucket, and content-word pairs across adjacent sentences. Numeric: overlap of
    adjacent sentences (mean, min), each sentence's overlap with the rest of the story (min),
    name cues (first-sentence names recurring later, names first seen late, a pronoun before
    any name) and each sentence's length relative to the story's mean, by bucket.
    """
    tokens = [words(sentence) for sentence in story]
    content = [_content_words(sentence) for sentence in story]
    count = len(story)
    for index, sentence in enumerate(tokens):
        bucket = _bucket(index, count)
        for word in sentence:
            yield f"w:{bucket}:{word}", 1.0
        if sentence:
            yield f"s:{bucket}:{sentence[0]}", 1.0

    adjacent = [_jaccard(a, b) for a, b in pairwise(content)] or [0.0]
    yield "n:adjacent_mean", float(np.mean(adjacent))
    yield "n:adjacent_min", min(adjacent)
    rest = [_jaccard(c, set().union(*content[:i], *content[i + 1:]))
            for i, c in enumerate(content)]
    yield "n:rest_min", min(rest) if count > 1 else 0.0

    if count > 1:
        scores = [counts.association(c, set().union(*content[:i], *content[i + 1:]))
                  for i, c in enumerate(content)]
        for kind, values in (("mean", [m for m, _ in scores]), ("best", [b for _, b in scores])):
            for stat, value in (("min", min(values)), ("mean", float(np.mean(values)))):
                yield f"c:{kind}_{stat}", value / 5
                yield f"b:{kind}_{stat}:{int(np.clip(value, -10, 10))}", 1.0

    names = [_names(sentence) for sentence in story]
    first_names = names[0]
    later = names[1:]
    if later:
        yield "n:first_names_recur", float(np.mean([bool(first_names & n) for n in later]))
        seen = set(first_names)
        late = 0
        for n in later:
            late += bool(n - seen)
            seen |= n
        yield "n:late_names", late / len(later)
    first_words = tokens[0]
    yield "n:first_has_name", float(bool(first_names))
    yield "n:pronoun_first", float(bool(first_words) and first_words[0] in PRONOUNS)

    lengths = np.array([len(sentence) for sentence in tokens], dtype=float)
    mean_length = lengths.mean() or 1.0
    for index, length in enumerate(lengths):
        yield f"n:length:{_bucket(index, count)}", float(length / mean_length)
