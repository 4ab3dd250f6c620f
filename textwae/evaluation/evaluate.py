"""Evaluate a trained model on held-out examples with the text-VAE literature's metrics.

`evaluate` runs the model (teacher-forced pass, greedy reconstruction, prior samples,
interpolation, transfer) and hands strings and tensors to the pure functions of
`textwae.evaluation.metrics` and to judges independent of the model: two trained on the training
split, the TF-IDF label judge (`metrics.LabelJudge`) and the n-gram language model of
`textwae.evaluation.judges`, and a pretrained LM read against real held-out lines
(`textwae.evaluation.lm_judge`), which see the *generated* text. Every number it returns is finite;
a metric that cannot be computed on the given data is left out and an `EvaluationWarning` says
why, so a caller never reads a plausible-looking null.
"""

from __future__ import annotations

import math
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from textwae import generation
from textwae.data.records import Example
from textwae.errors import ConfigError, EvaluationWarning
from textwae.evaluation import metrics
from textwae.evaluation.judges import (
    EmbeddingJudge,
    NgramJudge,
    embedding_judge_available,
    load_or_fit,
)
from textwae.evaluation.lm_judge import NOTE, LMJudge, judge_language_model
from textwae.evaluation.teacher_forced import prior_mmd, teacher_forced
from textwae.models.autoencoder import TextWAE
from textwae.text.names import Cast

INTERPOLATION_STEPS = 7  # points on each interpolation path, both ends included
INTERPOLATION_PAIRS = 20  # random held-out pairs whose midpoints the judges read
EMBEDDING_JUDGE_TRAIN = 5000  # labelled training examples (seeded sample) the embedding judge
#   learns from: MiniLM embeds about 150 sentences a second on one CPU thread


def _warn(message: str) -> None:
    warnings.warn(message, EvaluationWarning, stacklevel=3)


def reconstruct_codes(model: TextWAE, codes: torch.Tensor, max_length: int, batch_size: int,
                      casts: list[Cast] | None = None) -> list[str]:
    """Greedy decoding of each code in (N, D), `batch_size` codes at a time; names come from
    `casts` (the inputs' own), else are drawn (`generation.with_names`, seeded)."""
    decoding = generation.DecodingConfig(greedy=True, max_length=max_length)
    texts: list[str] = []
    for start in range(0, codes.shape[0], batch_size):
        texts += generation.decode_texts(model, codes[start : start + batch_size], decoding)
    return generation.with_names(model, texts, torch.Generator().manual_seed(0), casts)


def label_components(model: TextWAE, labels: list[str], assigned: list[int]) -> dict[str, int]:
    """Label -> prior component: the model's own map if it keeps one, else a majority vote.

    The vote gives each label the component most of its codes are assigned to, so two labels
    may share a component; an `EvaluationWarning` ("mode_map: ...") reports the map used.
    """
    own = getattr(model, "label_map", None)
    mapping = own() if callable(own) else None
    if mapping:
        return {str(label): int(component) for label, component in mapping.items()}
    votes: dict[str, Counter] = {}
    for label, component in zip(labels, assigned, strict=True):
        votes.setdefault(label, Counter())[component] += 1
    mapping = {label: count.most_common(1)[0][0] for label, count in sorted(votes.items())}
    _warn(f"mode_map: the model keeps no label map, so each label is mapped to the component "
          f"most of its codes are assigned to: {mapping}")
    return mapping


def evaluate(model: TextWAE, examples: list[Example],
             train_examples: list[Example] | None = None, n_samples: int = 500,
             seed: int = 0, judge_cache: str | Path | None = None,
             embedding_judge: bool | None = None,
             lm_judge: str | Literal[False] | None = None) -> dict[str, Any]:
    """All metrics of `model` on held-out `examples`, as a JSON-ready dict of finite numbers.

    Reconstruction, latent and sample figures come from `model`; what the generated text
    reads like is judged by models fitted on `train_examples` (the training split) and
    independent of `model`: the n-gram judge is read from or fitted into `judge_cache`, and
    the MiniLM judge runs with `embedding_judge` True (None: when the `minilm` extra is
    installed). The LM judge reads with the LM `lm_judge` names (None: SmolLM2 where its wheel
    is installed; False: off), against the held-out texts. docs/metrics.md defines every key.
    """
    if n_samples < 1:
        raise ConfigError(f"n_samples must be positive, got {n_samples}")
    was_training = model.training
    try:
        return _evaluate(model, examples, train_examples, n_samples, seed, judge_cache,
                         embedding_judge, lm_judge)
    finally:
        model.train(was_training)


@dataclass
class _Fluency:
    """The judges of how generated lines read, each None where absent: the n-gram judge with
    its perplexity on real held-out text (the ratios' denominator), and the LM judge."""

    ngram: NgramJudge | None = None
    real_perplexity: float = math.nan
    lm: LMJudge | None = None

    @property
    def judges(self) -> bool:
        return self.ngram is not None or self.lm is not None

    def scores(self, texts: list[str]) -> dict[str, float]:
        scores: dict[str, float] = {}
        if self.ngram is not None:
            scores["clean_rate"] = metrics.clean_rate(texts, self.ngram.known_words)
            scores["judge_ppl_ratio"] = self.ngram.perplexity(texts) / self.real_perplexity
        if self.lm is not None:
            scores.update(self.lm.scores(texts))
        return scores


@dataclass
class _Labels:
    """purity and nmi, and the label judge with the labels it can judge -> their component."""

    figures: dict[str, Any] = field(default_factory=dict)
    judge: metrics.LabelJudge | None = None
    judged: dict[str, int] = field(default_factory=dict)


def _evaluate(model: TextWAE, examples: list[Example], train_examples: list[Example] | None,
              n_samples: int, seed: int, judge_cache: str | Path | None,
              embedding_judge: bool | None, lm_judge: str | Literal[False] | None
              ) -> dict[str, Any]:
    language_model = judge_language_model(lm_judge)  # a missing LM fails before the work
    cfg = model.config
    max_length, batch_size = cfg.data.max_length, cfg.train.batch_size
    forced = teacher_forced(model, examples)
    codes = forced.codes
    texts = [ex.text for ex in examples]
    result: dict[str, Any] = {}

    reconstructions = reconstruct_codes(model, codes, max_length, batch_size,
                                        generation.casts_of(model, texts))
    result["bleu"], result["bleu_signature"] = metrics.corpus_bleu(reconstructions, texts)
    result["recon_perplexity"] = metrics.perplexity(forced.nll, forced.tokens)
    result["code_gain"] = forced.code_gain

    if len(examples) >= 2:
        result["mmd"] = prior_mmd(codes, model.prior, cfg.regularizer, seed)
        result["active_units"] = metrics.active_units(codes)
    else:
        _warn("mmd and active_units need at least 2 examples; left out")
    if len(examples) >= metrics.MIN_EXAMPLES_PER_DIM * codes.shape[1]:
        with torch.no_grad():
            offsets = model.prior.standardised_offsets(codes)
        result["thin_directions"] = metrics.thin_directions(offsets)
    else:
        _warn(f"thin_directions needs {metrics.MIN_EXAMPLES_PER_DIM} examples per latent "
              "dimension; left out")

    # what users get by default: the run's generation: section (its LM included)
    sampling = generation.DecodingConfig.of(model.config.generation, max_length=max_length)
    samples, _ = generation.sample(model, n_samples, sampling, seed=seed)
    if n_samples >= 2:
        result["self_bleu"] = metrics.self_bleu(samples, seed=seed)
    else:
        _warn("self_bleu needs at least 2 samples; left out")
    result["distinct_1"] = metrics.distinct_n(samples, 1)
    result["distinct_2"] = metrics.distinct_n(samples, 2)

    ends = _interpolation_ends(texts)
    if ends is not None:
        greedy = generation.DecodingConfig(greedy=True, max_length=max_length)
        outputs, _ = generation.interpolate(model, *ends, INTERPOLATION_STEPS, greedy, seed)
        result["interpolation"] = {"start": ends[0], "end": ends[1], "outputs": outputs,
                                   **metrics.interpolation_report(outputs, *ends)}
    else:
        _warn("interpolation needs 2 examples with different texts; left out")

    labels = _label_metrics(model, examples, codes, train_examples)
    result.update(labels.figures)
    lm = LMJudge(*language_model, texts, seed) if language_model is not None else None
    if lm is not None:
        result["lm_judge"] = {**lm.description(), "note": NOTE}
    fluency = _fluency(train_examples, texts, judge_cache, lm)
    training = metrics.unit_set(ex.text for ex in train_examples) if train_examples else None

    # Samples of each mode: every mode for the fluency judges, the judged labels' for accuracy.
    components = (range(model.prior.components) if fluency.judges
                  else sorted(set(labels.judged.values())))
    by_mode = {component: generation.sample(model, n_samples, sampling, mode=component,
                                            seed=seed + 1 + component)[0]
               for component in components}
    if labels.judged:
        result["mode_accuracy"] = metrics.mode_accuracy(
            {label: by_mode[component] for label, component in labels.judged.items()},
            labels.judge)
    if fluency.ngram is not None:
        result["judge_perplexity"] = fluency.real_perplexity
    if by_mode:
        result["samples"] = _samples_report(samples, by_mode, fluency, labels, result, training)

    if fluency.judges:
        midpoints = _midpoints(model, codes, texts, seed)
        if midpoints is None:
            _warn("interpolation_midpoints need 2 examples with different texts; left out")
        else:
            n_pairs, lines = midpoints
            result["interpolation_midpoints"] = {"n_pairs": n_pairs, **fluency.scores(lines)}

    embedding = _embedding_judge(embedding_judge, labels, train_examples, seed)
    if embedding is not None:
        result["embedding_judge"] = _embedding_report(embedding, examples, reconstructions,
                                                      by_mode, labels)
    transfer = _transfer_report(model, examples, labels, fluency, n_samples, seed, embedding)
    if transfer is not None:
        result["transfer"] = transfer
    return finite_only(result)


def _embedding_judge(enabled: bool | None, labels: _Labels,
                     train_examples: list[Example] | None, seed: int) -> EmbeddingJudge | None:
    """The embedding judge (None: off, or not installed and not asked for), fitted on a seeded
    sample of the labelled training examples when the TF-IDF judge has labels to judge."""
    if enabled is False or (enabled is None and not embedding_judge_available()):
        return None
    if not embedding_judge_available():
        raise ConfigError("the embedding judge needs the minilm extra: "
                          "pip install 'textwae[minilm]'")
    judge = EmbeddingJudge()
    if labels.judge is not None:
        labelled = [ex for ex in train_examples or [] if ex.label is not None]
        if len(labelled) > EMBEDDING_JUDGE_TRAIN:
            labelled = random.Random(seed).sample(labelled, EMBEDDING_JUDGE_TRAIN)
        if len({ex.label for ex in labelled}) >= 2:
            judge.fit([ex.text for ex in labelled], [str(ex.label) for ex in labelled])
    return judge


def _embedding_report(judge: EmbeddingJudge, examples: list[Example],
                      reconstructions: list[str], by_mode: dict[int, list[str]],
                      labels: _Labels) -> dict[str, Any]:
    texts = [ex.text for ex in examples]
    report: dict[str, Any] = {"model": "all-MiniLM-L6-v2",
                              "reconstruction_similarity": judge.similarity(reconstructions,
                                                                            texts)}
    if not judge.fitted:
        return report
    known = set(judge.classes)
    labelled = [ex for ex in examples if ex.label is not None and str(ex.label) in known]
    report["train_examples"] = judge.train_size
    if labelled:
        report["heldout_accuracy"] = judge.accuracy([ex.text for ex in labelled],
                                                    [str(ex.label) for ex in labelled])
    judged = {label: by_mode[component] for label, component in labels.judged.items()
              if label in known and component in by_mode}
    if judged:
        report["mode_accuracy"] = metrics.mode_accuracy(judged, judge)
    return report


def _fluency(train_examples: list[Example] | None, held_out: list[str],
             judge_cache: str | Path | None, lm: LMJudge | None) -> _Fluency:
    """The LM judge `lm` and the n-gram judge of the training texts (from the cache when it
    holds it), if there are any."""
    if not train_examples:
        _warn("clean_rate, copy_rate, judge_perplexity and judge_ppl_ratio need the training "
              "examples; left out")
        return _Fluency(lm=lm)
    judge = load_or_fit([ex.text for ex in train_examples], cache_dir=judge_cache)
    return _Fluency(judge, judge.perplexity(held_out), lm)


def _samples_report(samples: list[str], by_mode: dict[int, list[str]], fluency: _Fluency,
                    labels: _Labels, result: dict[str, Any],
                    training: frozenset[str] | None) -> dict[str, Any]:
    """The fluency judges' scores and the copy rate against the `training` units (None:
    unknown) of the mixture's samples and of each mode's, and the accuracy of each mode one
    judged label owns."""

    def scores(texts: list[str]) -> dict[str, Any]:
        entry = fluency.scores(texts)
        if training is not None:
            entry["copy_rate"] = metrics.copy_rate(texts, training)
        return entry

    owners: dict[int, list[str]] = {}
    for label, component in labels.judged.items():
        owners.setdefault(component, []).append(label)
    per_mode: dict[str, dict[str, Any]] = {}
    for component, texts in by_mode.items():
        entry = scores(texts)
        owned = owners.get(component, [])
        if len(owned) == 1:
            entry.update(label=owned[0], accuracy=result["mode_accuracy"][owned[0]])
        per_mode[str(component)] = entry
    report = scores(samples)
    report["per_mode"] = per_mode
    return report


def _random_pairs(texts: list[str], n: int, seed: int) -> list[tuple[int, int]]:
    """Up to `n` distinct seeded random pairs of indices whose texts differ."""
    if len(set(texts)) < 2:
        return []
    rng = random.Random(seed)
    pairs: dict[tuple[int, int], None] = {}
    for _ in range(20 * n):
        if len(pairs) == n:
            break
        i, j = rng.sample(range(len(texts)), 2)
        if texts[i] != texts[j] and (j, i) not in pairs:
            pairs[(i, j)] = None
    return list(pairs)


def _midpoints(model: TextWAE, codes: torch.Tensor, texts: list[str],
               seed: int) -> tuple[int, list[str]] | None:
    """Greedy decodings of the intermediate points of the paths between random held-out pairs
    (their codes are rows of `codes`), and the number of pairs; None without a pair."""
    pairs = _random_pairs(texts, INTERPOLATION_PAIRS, seed)
    if not pairs:
        return None
    weights = torch.linspace(0, 1, INTERPOLATION_STEPS, device=codes.device)[1:-1]  # (S-2,)
    weights = weights[None, :, None]  # (1, S-2, 1)
    start = codes[[i for i, _ in pairs]][:, None]  # (P, 1, D)
    end = codes[[j for _, j in pairs]][:, None]  # (P, 1, D)
    z = ((1 - weights) * start + weights * end).reshape(-1, codes.shape[1])  # (P * (S-2), D)
    cfg = model.config
    return len(pairs), reconstruct_codes(model, z, cfg.data.max_length, cfg.train.batch_size)


def _transfer_report(model: TextWAE, examples: list[Example], labels: _Labels,
                     fluency: _Fluency, n: int, seed: int,
                     embedding: EmbeddingJudge | None = None) -> dict[str, Any] | None:
    """Up to `n` labelled held-out examples moved to another judged label's mode, judged."""
    if labels.judge is None:
        return None  # _label_metrics has said why
    if len(labels.judged) < 2:
        _warn("transfer needs at least 2 labels the judge knows; left out")
        return None
    pool = [ex for ex in examples if ex.label is not None and str(ex.label) in labels.judged]
    if not pool:
        _warn("transfer needs held-out examples with a label the judge knows; left out")
        return None
    rng = random.Random(seed)
    chosen = pool if len(pool) <= n else rng.sample(pool, n)
    inputs = [ex.text for ex in chosen]
    targets = [rng.choice([label for label in labels.judged if label != str(ex.label)])
               for ex in chosen]
    greedy = generation.DecodingConfig(greedy=True, max_length=model.config.data.max_length)
    outputs = [""] * len(chosen)
    for target in sorted(set(targets)):
        index = [i for i, t in enumerate(targets) if t == target]
        moved, _ = generation.transfer(model, [inputs[i] for i in index],
                                       labels.judged[target], greedy, seed)
        for i, text in zip(index, moved, strict=True):
            outputs[i] = text
    accuracy = labels.judge.accuracy(outputs, targets)
    bleu, _ = metrics.corpus_bleu(outputs, inputs)
    report: dict[str, Any] = {"n": len(chosen), "accuracy": accuracy, "bleu_to_input": bleu,
                              "gmean": metrics.transfer_gmean(accuracy, bleu)}
    report.update(fluency.scores(outputs))
    if embedding is not None:
        if embedding.fitted and set(targets) <= set(embedding.classes):
            report["embedding_accuracy"] = embedding.accuracy(outputs, targets)
        report["embedding_similarity_to_input"] = embedding.similarity(outputs, inputs)
    return report


def _interpolation_ends(texts: list[str]) -> tuple[str, str] | None:
    """The first example and the first later one with a different text."""
    for text in texts[1:]:
        if text != texts[0]:
            return texts[0], text
    return None


def _label_metrics(model: TextWAE, examples: list[Example], codes: torch.Tensor,
                   train_examples: list[Example] | None) -> _Labels:
    """purity and nmi of the labelled examples, and the label judge trained on the labelled
    `train_examples` with the labels it can judge (none: empty, with a warning)."""
    labelled = [i for i, ex in enumerate(examples) if ex.label is not None]
    if not labelled:
        _warn("the examples have no labels: purity, nmi, mode_accuracy and transfer are left "
              "out")
        return _Labels()
    if len(labelled) < len(examples):
        _warn(f"only {len(labelled)} of {len(examples)} examples have a label; purity and nmi "
              "use those")
    labels = [str(examples[i].label) for i in labelled]
    assigned = model.prior.assign(codes[labelled]).tolist()
    figures: dict[str, Any] = {"purity": metrics.purity(assigned, labels),
                               "nmi": metrics.nmi(assigned, labels)}

    train_labelled = [ex for ex in train_examples or [] if ex.label is not None]
    if len({ex.label for ex in train_labelled}) < 2:
        _warn("mode_accuracy and transfer need training examples with at least 2 distinct "
              "labels for the judge; left out")
        return _Labels(figures)
    judge = metrics.LabelJudge().fit([ex.text for ex in train_labelled],
                                     [str(ex.label) for ex in train_labelled])
    mapping = label_components(model, labels, assigned)
    unknown = sorted(set(mapping) - set(judge.classes))
    if unknown:
        _warn(f"labels {unknown} never occur in the training data, so the judge cannot score "
              "their mode; left out of mode_accuracy and transfer")
    judged = {label: component for label, component in mapping.items() if label not in unknown}
    return _Labels(figures, judge, judged)


def finite_only(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Drop (with a warning) numbers that are NaN or infinite, in nested groups too."""
    kept = {}
    for key, value in result.items():
        if isinstance(value, dict):
            kept[key] = finite_only(value, f"{prefix}{key}.")
        elif isinstance(value, float) and not math.isfinite(value):
            _warn(f"{prefix}{key} is {value}; left out")
        else:
            kept[key] = value
    return kept
