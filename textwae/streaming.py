"""Corpora larger than memory (`data.streaming`): read as a `datasets` stream, batched on the fly.

Local files are read one at a time by the same readers as the in-memory path (so errors read
the same), wrapped in a `datasets.IterableDataset` with one shard per file; a `datasets`
name is opened with `streaming=True`. Memory then holds one file, the shuffle buffer
(`data.shuffle_buffer` units) and one pool of batches, never the corpus.

Without `data.valid`, each record's side is a seeded hash of its text (`data.valid_fraction`
of records held out, in expectation), so the split needs no pass over the whole corpus. The
first `data.stream_sample` units, in corpus order, train the tokenizer, name the labels and
give the validation units; training then reads the whole stream, shuffled anew each epoch.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textwae.batching import Batch, TokenizedTexts, chunks
from textwae.config import DataConfig
from textwae.data import (
    UNIT_SPLITTERS,
    DataError,
    Example,
    Source,
    check_columns,
    hashed_coin,
    read_examples,
    read_file,
    record_of_row,
    sources,
)

if TYPE_CHECKING:
    import datasets

UNIT_FEATURES = {"text": "string", "label": "string", "held_out": "bool"}


def unit_stream(cfg: DataConfig) -> datasets.IterableDataset:
    """Every unit of `cfg.train` in corpus order, each flagged `held_out` for validation."""
    import datasets  # imported here: it takes a second and only streaming needs it

    features = datasets.Features({name: datasets.Value(kind)
                                  for name, kind in UNIT_FEATURES.items()})
    hold_out = cfg.valid is None
    parts = sources(cfg.train, cfg)
    files = [str(part.file) for part in parts if part.file is not None]
    streams = [_hub_units(part, cfg, hold_out, features) for part in parts if part.file is None]
    if files:  # one shard per file: shuffling also reorders the files every epoch
        streams.insert(0, datasets.IterableDataset.from_generator(
            functools.partial(_file_units, cfg=cfg, hold_out=hold_out),
            gen_kwargs={"paths": files}, features=features))
    return streams[0] if len(streams) == 1 else datasets.concatenate_datasets(streams)


def _file_units(paths: list[str], cfg: DataConfig, hold_out: bool) -> Iterator[dict[str, Any]]:
    for path in paths:
        yield from _units(read_file(Path(path), cfg), cfg, hold_out)


def _hub_units(part: Source, cfg: DataConfig, hold_out: bool,
               features: datasets.Features) -> datasets.IterableDataset:
    """A `datasets` source opened with streaming=True, as units; its columns checked on the
    first row, since a stream's columns are known only once it is read."""
    import datasets

    name, options = part.load_args
    try:
        rows = datasets.load_dataset(name, streaming=True, **options)
        first = next(iter(rows), None)
    except (OSError, ValueError) as error:
        raise DataError(f"{part.where}: cannot stream it with `datasets`: {error}") from error
    if first is None:
        raise DataError(f"{part.where}: the stream holds no record")
    check_columns(part.where, list(first), cfg)
    columns = list(first)

    def to_units(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        records = (record_of_row(dict(zip(columns, values, strict=True)), cfg)
                   for values in zip(*(batch[c] for c in columns), strict=True))
        units = list(_units((r for r in records if r is not None), cfg, hold_out))
        return {name: [unit[name] for unit in units] for name in UNIT_FEATURES}

    return rows.map(to_units, batched=True, remove_columns=columns, features=features)


def _units(records: Iterable[Example], cfg: DataConfig, hold_out: bool) -> Iterator[dict[str, Any]]:
    split = UNIT_SPLITTERS[cfg.unit]
    for record in records:
        held_out = hold_out and hashed_coin(f"valid:{cfg.split_seed}:{record.text}",
                                            cfg.valid_fraction)
        for text in split(record.text):
            yield {"text": text, "label": record.label, "held_out": held_out}


def sample_splits(cfg: DataConfig) -> tuple[list[Example], list[Example]]:
    """The training units among the first `cfg.stream_sample` units of the stream, and the
    validation units: `cfg.valid` read whole, else the held-out ones among that sample."""
    train, held_out = [], []
    for unit in _read(unit_stream(cfg).take(cfg.stream_sample)):
        (held_out if unit["held_out"] else train).append(Example(unit["text"], unit["label"]))
    if not train:
        raise DataError(f"the first {cfg.stream_sample} units of the stream hold no training "
                        "unit")
    valid = read_examples(cfg.valid, cfg) if cfg.valid is not None else held_out
    return train, valid


def _read(stream: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows of a stream; `datasets` reads lazily, so its failures surface here."""
    try:
        yield from stream
    except (OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"data.train: reading the stream failed: {error}") from error


class StreamedBatches:
    """Length-bucketed batches of a shuffled unit stream, the streaming counterpart of
    `BucketBatchSampler`: pools of `pool_batches * batch_size` units are sorted by length,
    cut into batches and the batches shuffled. Deterministic given (seed, epoch), so a
    resumed run replays its epoch and skips the batches it has trained on.

    Under torch.distributed every rank reads the same stream and takes every
    `num_replicas`-th batch; the last incomplete round is dropped, so every rank runs the
    same number of steps.
    """

    def __init__(self, cfg: DataConfig, prepare: Callable[[list[Example]], TokenizedTexts],
                 batch_size: int, seed: int = 0, pool_batches: int = 50, num_replicas: int = 1,
                 rank: int = 0) -> None:
        stream = unit_stream(cfg)
        if cfg.valid is None:
            stream = stream.filter(lambda unit: not unit["held_out"])
        # one input shard (a file) at a time: each is read whole, so more would multiply memory
        self.units = stream.shuffle(seed=seed, buffer_size=cfg.shuffle_buffer,
                                    max_buffer_input_shards=1)
        self.prepare = prepare  # units -> their token ids (and label-guided components)
        self.batch_size, self.pool_batches, self.seed = batch_size, pool_batches, seed
        self.num_replicas, self.rank = num_replicas, rank

    def batches(self, epoch: int, start: int = 0) -> Generator[Batch, None, None]:
        """This rank's batches of one epoch from batch number `start` on."""
        self.units.set_epoch(epoch)
        rng = random.Random(f"{self.seed}:{epoch}")
        # closing: a run that stops mid-epoch ends the stream's reader threads here and now,
        # not when the interpreter shuts down (where a live reader thread aborts the process)
        with contextlib.closing(_read(self.units)) as units:
            # rounds of one batch per rank; the last, incomplete round is dropped
            rounds = chunks(self._pooled_batches(units, rng), self.num_replicas)
            mine = (batches[self.rank] for batches in rounds
                    if len(batches) == self.num_replicas)
            for texts, indices in itertools.islice(mine, start, None):
                yield texts.batch(indices)

    def _pooled_batches(self, units: Iterator[dict[str, Any]],
                        rng: random.Random) -> Iterator[tuple[TokenizedTexts, list[int]]]:
        """Every batch of the stream, in order: pools sorted by length, cut, shuffled."""
        for pool in chunks(units, self.pool_batches * self.batch_size):
            texts = self.prepare([Example(unit["text"], unit["label"]) for unit in pool])
            order = sorted(range(len(pool)), key=lambda i: len(texts.ids[i]))
            batches = list(chunks(order, self.batch_size))
            rng.shuffle(batches)
            for indices in batches:
                yield texts, indices


