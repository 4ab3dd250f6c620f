"""Train and validation units of a configured corpus: read whole, or sampled from a stream."""

from __future__ import annotations

from textwae.config.schema import DataConfig
from textwae.data.records import Example, read_records
from textwae.data.streaming import sample_splits
from textwae.data.units import split_train_valid, to_units
from textwae.errors import DataError


def read_examples(source: str | list[str], cfg: DataConfig) -> list[Example]:
    """Every unit of `source`: a path, glob, list of those, or `datasets` name.

    Texts are whitespace-normalised and empty ones skipped; `cfg.unit` decides whether a
    record is one unit or is split into sentences that keep its label.
    """
    return to_units(read_records(source, cfg), cfg.unit)


def load_splits(cfg: DataConfig) -> tuple[list[Example], list[Example]]:
    """Train and validation units: `cfg.valid` if given, else a held-out part of `cfg.train`.

    The hold-out is drawn from whole records before sentence splitting, so sentences of one
    story never end up on both sides. A streamed corpus (`cfg.streaming`) is never read
    whole: its training units here are those of its first `cfg.stream_sample` units.
    """
    if cfg.streaming:
        train, valid = sample_splits(cfg)
    else:
        train_records, valid_records = load_records(cfg)
        train, valid = to_units(train_records, cfg.unit), to_units(valid_records, cfg.unit)
    if not valid:
        raise DataError("the validation split is empty")
    if len(train) < 2:  # a batch's MMD compares two codes at least
        raise DataError(f"the training split holds {len(train)} unit(s); training needs at "
                        "least 2: add data (or give data.valid, so all of data.train trains)")
    return train, valid


def load_records(cfg: DataConfig) -> tuple[list[Example], list[Example]]:
    """Train and validation records, whole (not split into units): the records `load_splits`
    cuts its units from (a story level reads each as a story of sentences)."""
    if cfg.valid is not None:
        return read_records(cfg.train, cfg), read_records(cfg.valid, cfg)
    return split_train_valid(read_records(cfg.train, cfg), cfg.valid_fraction, cfg.split_seed)
