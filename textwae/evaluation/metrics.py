"""Evaluation metrics: pure functions over strings, labels and tensors, no model code and no I/O.

Scores come from the field's standard libraries so numbers are comparable with published work:
sacrebleu for BLEU (and its signature, which pins tokenisation and smoothing), scikit-learn for
NMI and for the independent label judge. BLEU values are on sacrebleu's 0-100 scale.
Word-level figures (`clean_rate` here, the n-gram judge of `judges`) share one word split,
`words`.
Every function rejects empty or mismatched input with a `ValueError`, because a silently
averaged empty list would report a plausible-looking but meaningless score.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import torch
from sacrebleu.metrics import BLEU, BLEUScore
from sacrebleu.metrics.helpers import extract_all_word_ngrams

__all__ = [
    "LabelJudge",
    "active_units",
    "clean_rate",
    "copy_rate",
    "corpus_bleu",
    "distinct_n",
    "interpolation_report",
    "mode_accuracy",
    "nmi",
    "perplexity",
    "purity",
    "self_bleu",
    "thin_directions",
    "transfer_gmean",
    "unit_set",
    "words",
]


_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """The words of `text` as every word-level figure here counts them.

    The text is lowercased, then cut into maximal runs of word characters (letters, digits and
    the underscore, Unicode-aware) and single punctuation characters; whitespace separates and
    is dropped. So "Soup." and "soup ." both give ["soup", "."], and "don't" gives
    ["don", "'", "t"] wherever it occurs. An empty or blank text has no words.
    """
    return _WORD.findall(text.lower())


def clean_rate(texts: Sequence[str], vocabulary: set[str] | frozenset[str]) -> float:
    """Share of texts all of whose `words` occur in `vocabulary` (the training split's words).

    A text with no words at all (empty, or only whitespace) is not clean: a generator that
    emits nothing has not produced a clean line.
    """
    _check_texts(texts, "texts")
    clean = 0
    for text in texts:
        tokens = words(text)
        clean += bool(tokens) and all(token in vocabulary for token in tokens)
    return clean / len(texts)


def _one_spaced(text: str) -> str:
    """`text` with its runs of whitespace made one space and its ends stripped."""
    return " ".join(text.split())


def unit_set(texts: Iterable[str]) -> frozenset[str]:
    """The training units as `copy_rate` compares them: whitespace-normalised."""
    return frozenset(map(_one_spaced, texts))


def copy_rate(texts: Sequence[str], training: frozenset[str]) -> float:
    """Share of texts that are verbatim training units (`training` from `unit_set`; the same
    whitespace normalisation, nothing else): what a generator that memorises scores high on."""
    _check_texts(texts, "texts")
    return sum(_one_spaced(text) in training for text in texts) / len(texts)


def transfer_gmean(accuracy: float, bleu: float) -> float:
    """Geometric mean of a transfer's judge accuracy (0-1, taken as a percentage) and its BLEU
    to the inputs (0-100): sqrt(100 * accuracy * bleu), on a 0-100 scale, as style-transfer
    papers report it. It is high only when the style moved *and* the content stayed."""
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    if not 0 <= bleu <= 100:
        raise ValueError(f"bleu must lie in [0, 100], got {bleu}")
    return math.sqrt(100 * accuracy * bleu)


def _check_texts(texts: Sequence[str], name: str, min_len: int = 1) -> None:
    """Reject non-lists, too-short lists and non-string items early, with the argument's name."""
    if isinstance(texts, str):
        raise ValueError(f"{name} must be a list of strings, not a single string")
    if len(texts) < min_len:
        raise ValueError(f"{name} needs at least {min_len} text(s), got {len(texts)}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(text).__name__}")


def _check_paired(a: Sequence[Any], b: Sequence[Any], name_a: str, name_b: str) -> None:
    """Paired sequences must be non-empty and equally long, or per-item scores misalign."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"{name_a} and {name_b} must not be empty")
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} differ in length: {len(a)} != {len(b)}")


def _bleu_value(score: BLEUScore) -> float:
    """A sacrebleu score on 0-100. Its float arithmetic gives a perfect match
    100.00000000000004, which the range checks downstream (`transfer_gmean`) would refuse."""
    return min(float(score.score), 100.0)


def _sentence_bleu(hypothesis: str, references: Sequence[str]) -> float:
    """Sentence BLEU with effective order, as sacrebleu recommends for single segments."""
    return _bleu_value(BLEU(effective_order=True).sentence_score(hypothesis, list(references)))


def corpus_bleu(hypotheses: list[str], references: list[str]) -> tuple[float, str]:
    """Corpus BLEU of hypotheses against one reference each, plus sacrebleu's signature.

    The signature is returned alongside the score because BLEU is only comparable between runs
    with the same tokeniser, smoothing and sacrebleu version.
    """
    _check_texts(hypotheses, "hypotheses")
    _check_texts(references, "references")
    _check_paired(hypotheses, references, "hypotheses", "references")
    bleu = BLEU()
    score = bleu.corpus_score(list(hypotheses), [list(references)])
    return _bleu_value(score), str(bleu.get_signature())


def self_bleu(texts: list[str], max_texts: int = 500, seed: int = 0) -> float:
    """Mean Self-BLEU: each text scored against all the others as references (lower = more diverse).

    With more than `max_texts` texts a seeded random subsample of `max_texts` is used, both as
    hypotheses and references, so the score is deterministic and its cost bounded. Each score is
    exactly `BLEU(effective_order=True).sentence_score(text, others)`, but computed from n-gram
    counts extracted once: per n-gram the two largest counts over all texts give the clipping
    count with any one text left out, which avoids re-tokenising every reference n times.
    """
    _check_texts(texts, "texts", min_len=2)
    if max_texts < 2:
        raise ValueError(f"max_texts must be at least 2, got {max_texts}")
    pool = list(texts)
    if len(pool) > max_texts:
        pool = random.Random(seed).sample(pool, max_texts)

    bleu = BLEU(effective_order=True)
    order = bleu.max_ngram_order
    counts: list[Counter] = []
    lengths: list[int] = []
    for text in pool:
        # Same preprocessing as sacrebleu's sentence_score (no lowercasing, 13a tokeniser).
        ngrams, length = extract_all_word_ngrams(bleu.tokenizer(text.rstrip()), 1, order)
        counts.append(ngrams)
        lengths.append(length)

    # Per n-gram: (largest count, index of a text holding it, second-largest count).
    top: dict[tuple[str, ...], tuple[int, int, int]] = {}
    for idx, ngrams in enumerate(counts):
        for ngram, count in ngrams.items():
            best, best_idx, second = top.get(ngram, (0, -1, 0))
            if count > best:
                top[ngram] = (count, idx, best)
            elif count > second:
                top[ngram] = (best, best_idx, count)

    length_count = Counter(lengths)
    scores = []
    for idx, (ngrams, hyp_len) in enumerate(zip(counts, lengths, strict=True)):
        correct = [0] * order
        total = [0] * order
        for ngram, count in ngrams.items():
            best, best_idx, second = top[ngram]
            ref_count = second if best_idx == idx else best
            total[len(ngram) - 1] += count
            correct[len(ngram) - 1] += min(count, ref_count)
        ref_len = _closest_other_length(hyp_len, length_count)
        score = BLEU.compute_bleu(
            correct,
            total,
            hyp_len,
            ref_len,
            smooth_method=bleu.smooth_method,
            smooth_value=bleu.smooth_value,
            effective_order=True,
            max_ngram_order=order,
        )
        scores.append(_bleu_value(score))
    return float(sum(scores) / len(scores))


def _closest_other_length(hyp_len: int, length_count: Counter) -> int:
    """Closest reference length among the *other* texts (ties to the shorter, as sacrebleu does)."""
    others = length_count.copy()
    others[hyp_len] -= 1
    return min(
        (length for length, c in others.items() if c > 0), key=lambda r: (abs(hyp_len - r), r)
    )


def distinct_n(texts: list[str], n: int) -> float:
    """Share of unique n-grams among all n-grams over whitespace tokens (Li et al. 2016).

    N-grams do not cross text boundaries. Returns 0.0 when no text is long enough for an n-gram.
    """
    _check_texts(texts, "texts")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        tokens = text.split()
        for i in range(len(tokens) - n + 1):
            seen.add(tuple(tokens[i : i + n]))
            total += 1
    return len(seen) / total if total else 0.0


def purity(assignments: Sequence[int], labels: Sequence[str | int]) -> float:
    """Cluster purity: share of examples whose cluster's majority label is their own label.

    Measures whether prior components (clusters) capture the labels; 1.0 is perfect, and the
    floor is the majority-label share, so read it together with `nmi`.
    """
    _check_paired(assignments, labels, "assignments", "labels")
    by_cluster: dict[Hashable, Counter] = {}
    for cluster, label in zip(assignments, labels, strict=True):
        by_cluster.setdefault(cluster, Counter())[label] += 1
    majority = sum(max(c.values()) for c in by_cluster.values())
    return majority / len(labels)


def nmi(assignments: Sequence[int], labels: Sequence[str | int]) -> float:
    """Normalised mutual information between clusters and labels (arithmetic normalisation).

    Unlike purity it penalises splitting one label over many clusters, and is invariant to
    relabelling the clusters.
    """
    _check_paired(assignments, labels, "assignments", "labels")
    from sklearn.metrics import normalized_mutual_info_score  # sklearn takes seconds to import

    return float(normalized_mutual_info_score(list(labels), list(assignments)))


def active_units(means: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across examples (Burda et al. 2016).

    A dimension is active when Var_x(E_q[z_d | x]) > threshold; inactive dimensions carry no
    information about the input. `means` has shape (N, D); the unbiased variance over N is used.
    """
    if not isinstance(means, torch.Tensor):
        raise ValueError(f"means must be a torch.Tensor, got {type(means).__name__}")
    if means.dim() != 2:
        raise ValueError(f"means must have shape (N, D), got {tuple(means.shape)}")
    if means.shape[0] < 2:
        raise ValueError(
            f"means needs at least 2 examples to have a variance, got {means.shape[0]}"
        )
    if means.shape[1] == 0:
        raise ValueError("means has no latent dimensions")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    values = means.detach().to(torch.float64)
    if not torch.isfinite(values).all():
        raise ValueError("means contains NaN or infinite values")
    variance = values.var(dim=0, correction=1)
    return int((variance > threshold).sum().item())


THIN = 0.25  # a direction is thin where codes vary less than this share of the prior there
MIN_EXAMPLES_PER_DIM = 10  # fewer, and the smallest sample eigenvalues fall well under the true


def thin_directions(offsets: torch.Tensor, threshold: float = THIN) -> float:
    """Share of latent directions in which the codes vary less than `threshold` times the
    prior does: prior samples move there as far as anywhere, onto codes the decoder has
    hardly seen. `offsets` (N, D) are codes minus the mean of their own prior component,
    divided by its scale (so the prior's variance is 1 in every direction); the directions
    are the eigenvectors of their covariance. N must be at least `MIN_EXAMPLES_PER_DIM` x D:
    with fewer, sampling noise alone pushes the smallest eigenvalues under the threshold
    (for N = 2D and isotropic codes, down to about 0.09)."""
    if not isinstance(offsets, torch.Tensor) or offsets.dim() != 2:
        raise ValueError("offsets must be a torch.Tensor of shape (N, D)")
    n, dim = offsets.shape
    if dim == 0:
        raise ValueError("offsets has no latent dimensions")
    if n < MIN_EXAMPLES_PER_DIM * dim:
        raise ValueError(f"thin_directions needs at least {MIN_EXAMPLES_PER_DIM} examples per "
                         f"latent dimension ({MIN_EXAMPLES_PER_DIM * dim}), got {n}")
    if not 0 < threshold < math.inf:
        raise ValueError(f"threshold must be positive and finite, got {threshold}")
    values = offsets.detach().to(torch.float64)
    if not torch.isfinite(values).all():
        raise ValueError("offsets contains NaN or infinite values")
    eigenvalues = torch.linalg.eigvalsh(torch.cov(values.T).reshape(dim, dim))
    return float((eigenvalues < threshold).double().mean().item())


def perplexity(total_nll: float, total_tokens: int) -> float:
    """exp(total NLL / token count): perplexity from summed per-token NLL in nats.

    Summing first and dividing once weights every token equally, rather than every batch.
    Returns `inf` when the mean NLL is too large to exponentiate.
    """
    if total_tokens <= 0:
        raise ValueError(f"total_tokens must be positive, got {total_tokens}")
    if not math.isfinite(total_nll) or total_nll < 0:
        raise ValueError(f"total_nll must be a finite non-negative number, got {total_nll}")
    try:
        return math.exp(total_nll / total_tokens)
    except OverflowError:
        return math.inf


def interpolation_report(outputs: list[str], start: str, end: str) -> dict[str, Any]:
    """Summarise decoded latent interpolations: do outputs move from `start` towards `end`?

    `outputs` are the decodings along the path (first ~ start, last ~ end). Returns
    `distinct` (number of distinct strings along the whole path, so 1 means the decoder ignored
    the latent code), the sentence BLEU of every output to `start` and to `end`, and whether
    similarity to `start` falls (first > last) and similarity to `end` rises (last > first).
    """
    _check_texts(outputs, "outputs", min_len=2)
    if not isinstance(start, str) or not isinstance(end, str):
        raise ValueError("start and end must be strings")
    to_start = [_sentence_bleu(out, [start]) for out in outputs]
    to_end = [_sentence_bleu(out, [end]) for out in outputs]
    return {
        "distinct": len(set(outputs)),
        "bleu_to_start": to_start,
        "bleu_to_end": to_end,
        "start_falling": to_start[0] > to_start[-1],
        "end_rising": to_end[-1] > to_end[0],
    }


class LabelJudge:
    """Independent text classifier (TF-IDF uni+bigrams + logistic regression) that judges labels.

    It shares nothing with the auto-encoder, so its verdict on generated samples is not biased
    by the model's own encoder; train it on held-out real text.
    """

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        self.pipeline = Pipeline(
            [
                ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
                ("clf", LogisticRegression(max_iter=1000)),
            ]
        )
        self._fitted = False

    @property
    def classes(self) -> list[str]:
        """Labels the judge was trained on."""
        self._check_fitted()
        return [str(c) for c in self.pipeline.classes_]

    def fit(self, texts: list[str], labels: list[str]) -> LabelJudge:
        """Train on real texts and their string labels; needs at least two distinct labels."""
        _check_texts(texts, "texts")
        _check_paired(texts, labels, "texts", "labels")
        labels = [str(label) for label in labels]
        if len(set(labels)) < 2:
            raise ValueError("LabelJudge needs at least two distinct labels to learn from")
        self.pipeline.fit(list(texts), labels)
        self._fitted = True
        return self

    def predict(self, texts: list[str]) -> list[str]:
        """Predicted label for each text."""
        self._check_fitted()
        _check_texts(texts, "texts")
        return [str(p) for p in self.pipeline.predict(list(texts))]

    def accuracy(self, texts: list[str], labels: list[str]) -> float:
        """Share of texts whose predicted label equals the given label."""
        _check_paired(texts, labels, "texts", "labels")
        predicted = self.predict(texts)
        return sum(p == str(t) for p, t in zip(predicted, labels, strict=True)) / len(labels)

    def _check_fitted(self) -> None:
        if not self._fitted:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("LabelJudge.fit must be called before predicting")


def mode_accuracy(samples_by_label: dict[str, list[str]], judge: LabelJudge) -> dict[str, float]:
    """Per label, the share of samples drawn from that label's prior mode the judge assigns to it.

    This checks that each mixture component of the prior generates text of its label.
    """
    if not samples_by_label:
        raise ValueError("samples_by_label must not be empty")
    known = set(judge.classes)
    result: dict[str, float] = {}
    for label, samples in samples_by_label.items():
        if str(label) not in known:
            raise ValueError(
                f"label {label!r} is not one the judge was trained on: {sorted(known)}"
            )
        _check_texts(samples, f"samples_by_label[{label!r}]")
        result[label] = judge.accuracy(samples, [str(label)] * len(samples))
    return result
