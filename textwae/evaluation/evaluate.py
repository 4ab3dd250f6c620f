"""Evaluate a trained model on held-out examples with the text-VAE literature's metrics.

`evaluate` runs the model (teacher-forced pass, greedy reconstruction, prior samples,
interpolation) and hands strings and tensors to the pure functions of `textwae.evaluation.metrics`.
Every number it returns is finite; a metric that cannot be computed on the given data is left
out and an `EvaluationWarning` says why, so a caller never reads a plausible-looking null.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Any

import torch

from textwae import generation
from textwae.data.records import Example
from textwae.errors import ConfigError, EvaluationWarning
from textwae.evaluation import metrics
from textwae.evaluation.teacher_forced import prior_mmd, teacher_forced
from textwae.models.autoencoder import TextWAE

INTERPOLATION_STEPS = 7


def _warn(message: str) -> None:
    warnings.warn(message, EvaluationWarning, stacklevel=3)


def reconstruct_codes(model: TextWAE, codes: torch.Tensor, max_length: int,
                      batch_size: int) -> list[str]:
    """Greedy decoding of each code in (N, D), `batch_size` codes at a time."""
    decoding = generation.DecodingConfig(greedy=True, max_length=max_length)
    texts: list[str] = []
    for start in range(0, codes.shape[0], batch_size):
        texts += generation.decode_texts(model, codes[start : start + batch_size], decoding)
    return texts


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
             seed: int = 0) -> dict[str, Any]:
    """All metrics of `model` on held-out `examples`, as a JSON-ready dict of finite numbers.

    Keys: bleu, bleu_signature, recon_perplexity, mmd, active_units, self_bleu, distinct_1,
    distinct_2, interpolation and, for labelled examples, purity, nmi and mode_accuracy (the
    judge is trained on the labelled `train_examples`). BLEU is on sacrebleu's 0-100 scale.
    """
    if n_samples < 1:
        raise ConfigError(f"n_samples must be positive, got {n_samples}")
    was_training = model.training
    try:
        return _evaluate(model, examples, train_examples, n_samples, seed)
    finally:
        model.train(was_training)


def _evaluate(model: TextWAE, examples: list[Example], train_examples: list[Example] | None,
              n_samples: int, seed: int) -> dict[str, Any]:
    cfg = model.config
    max_length, batch_size = cfg.data.max_length, cfg.train.batch_size
    forced = teacher_forced(model, examples)
    codes = forced.codes
    texts = [ex.text for ex in examples]
    result: dict[str, Any] = {}

    reconstructions = reconstruct_codes(model, codes, max_length, batch_size)
    result["bleu"], result["bleu_signature"] = metrics.corpus_bleu(reconstructions, texts)
    result["recon_perplexity"] = metrics.perplexity(forced.nll, forced.tokens)

    if len(examples) >= 2:
        result["mmd"] = prior_mmd(model, codes, seed)
        result["active_units"] = metrics.active_units(codes)
    else:
        _warn("mmd and active_units need at least 2 examples; left out")

    sampling = generation.DecodingConfig(temperature=1.0, max_length=max_length)
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

    result.update(_label_metrics(model, examples, codes, train_examples, n_samples, seed))
    return _finite_only(result)


def _interpolation_ends(texts: list[str]) -> tuple[str, str] | None:
    """The first example and the first later one with a different text."""
    for text in texts[1:]:
        if text != texts[0]:
            return texts[0], text
    return None


def _label_metrics(model: TextWAE, examples: list[Example], codes: torch.Tensor,
                   train_examples: list[Example] | None, n_samples: int,
                   seed: int) -> dict[str, Any]:
    """purity, nmi and mode_accuracy on the labelled examples (none: empty, with a warning)."""
    labelled = [i for i, ex in enumerate(examples) if ex.label is not None]
    if not labelled:
        _warn("the examples have no labels: purity, nmi and mode_accuracy are left out")
        return {}
    if len(labelled) < len(examples):
        _warn(f"only {len(labelled)} of {len(examples)} examples have a label; purity and nmi "
              "use those")
    labels = [str(examples[i].label) for i in labelled]
    assigned = model.prior.assign(codes[labelled]).tolist()
    result: dict[str, Any] = {"purity": metrics.purity(assigned, labels),
                              "nmi": metrics.nmi(assigned, labels)}

    train_labelled = [ex for ex in train_examples or [] if ex.label is not None]
    if len({ex.label for ex in train_labelled}) < 2:
        _warn("mode_accuracy needs training examples with at least 2 distinct labels for the "
              "judge; left out")
        return result
    judge = metrics.LabelJudge().fit([ex.text for ex in train_labelled],
                                     [str(ex.label) for ex in train_labelled])
    mapping = label_components(model, labels, assigned)
    unknown = sorted(set(mapping) - set(judge.classes))
    if unknown:
        _warn(f"labels {unknown} never occur in the training data, so the judge cannot score "
              "their mode; left out of mode_accuracy")
    sampling = generation.DecodingConfig(temperature=1.0, max_length=model.config.data.max_length)
    samples_by_label = {
        label: generation.sample(model, n_samples, sampling, mode=component,
                                 seed=seed + 1 + component)[0]
        for label, component in mapping.items() if label not in unknown
    }
    if samples_by_label:
        result["mode_accuracy"] = metrics.mode_accuracy(samples_by_label, judge)
    return result


def _finite_only(result: dict[str, Any]) -> dict[str, Any]:
    """Drop (with a warning) top-level numbers that are NaN or infinite."""
    kept = {}
    for key, value in result.items():
        if isinstance(value, float) and not math.isfinite(value):
            _warn(f"{key} is {value}; left out")
        else:
            kept[key] = value
    return kept
