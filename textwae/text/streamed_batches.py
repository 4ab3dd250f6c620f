"""Length-bucketed batches of a shuffled unit stream (`data.streaming`), tokenised on the fly."""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import Callable, Generator, Iterator
from typing import Any

from textwae.config.schema import DataConfig
from textwae.data.records import Example
from textwae.data.streaming import read_stream, unit_stream
from textwae.text.batching import Batch, TokenizedTexts, chunks, training_batches


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
        with contextlib.closing(read_stream(self.units)) as units:
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
            batches = training_batches(order, self.batch_size)
            rng.shuffle(batches)
            for indices in batches:
                yield texts, indices
