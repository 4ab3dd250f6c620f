"""Corpora larger than memory (`data.streaming`): read as a `datasets` stream of units.

Local files are read one at a time by the same readers as the in-memory path (so errors read
the same), wrapped in a `datasets.IterableDataset` with one shard per file; a `datasets`
name is opened with `streaming=True`. Memory then holds one file, the shuffle buffer
(`data.shuffle_buffer` units) and one pool of batches, never the corpus.

Without `data.valid`, each record's side is the "valid" coin of `textwae.data.units`, as in
memory, so the split needs no pass over the whole corpus and holds out the same records. The
first `data.stream_sample` units, in corpus order, train the tokenizer, name the labels and
give the validation units; training then reads the whole stream, shuffled anew each epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textwae.config.schema import DataConfig
from textwae.data.records import (
    Example,
    Source,
    check_columns,
    hub_call,
    read_file,
    read_records,
    record_of_row,
    sources,
)
from textwae.data.units import hash_coin, record_units, to_units
from textwae.errors import DataError

if TYPE_CHECKING:
    import datasets  # imported here, as above: it takes a second

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
    import datasets  # imported here, as above: it takes a second

    name, options = part.load_args
    with hub_call(part) as offline:
        try:
            rows = datasets.load_dataset(name, streaming=True, **options)
            first = next(iter(rows), None)
        except (OSError, ValueError) as error:
            raise DataError(f"{part.where}: cannot stream it with `datasets`{offline}: "
                            f"{error}") from error
    if first is None:
        raise DataError(f"{part.where}: the stream holds no record")
    check_columns(part.where, list(first), cfg)
    columns = list(first)

    def to_units(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        records = (record_of_row(dict(zip(columns, values, strict=True)), cfg,
                                 f"{part.where}: a streamed row")
                   for values in zip(*(batch[c] for c in columns), strict=True))
        units = list(_units((r for r in records if r is not None), cfg, hold_out))
        return {name: [unit[name] for unit in units] for name in UNIT_FEATURES}

    return rows.map(to_units, batched=True, remove_columns=columns, features=features)


def _units(records: Iterable[Example], cfg: DataConfig, hold_out: bool) -> Iterator[dict[str, Any]]:
    for record in records:
        held_out = hold_out and hash_coin("valid", cfg.split_seed, record.text,
                                          cfg.valid_fraction)
        for unit in record_units(record, cfg.unit):
            yield {"text": unit.text, "label": unit.label, "held_out": held_out}


def sample_splits(cfg: DataConfig) -> tuple[list[Example], list[Example]]:
    """The training units among the first `cfg.stream_sample` units of the stream, and the
    validation units: `cfg.valid` read whole, else the held-out ones among that sample."""
    train, held_out = [], []
    for unit in read_stream(unit_stream(cfg).take(cfg.stream_sample)):
        (held_out if unit["held_out"] else train).append(Example(unit["text"], unit["label"]))
    if not train:
        raise DataError(f"the first {cfg.stream_sample} units of the stream hold no training "
                        "unit")
    valid = (to_units(read_records(cfg.valid, cfg), cfg.unit) if cfg.valid is not None
             else held_out)
    return train, valid


def read_stream(stream: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows of a stream; `datasets` reads lazily, so its failures surface here."""
    try:
        yield from stream
    except (OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"data.train: reading the stream failed: {error}") from error
