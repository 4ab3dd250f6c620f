"""Batches of token ids: padding, length buckets, and the order an epoch runs them in.

Token ids arrive from the tokenizer as lists of ints (two lists per unit when the encoder has
its own tokenizer); `collate` pads them and `BucketBatchSampler` groups units of similar
length so little compute goes to padding. A streamed corpus has its own batch source,
`textwae.streaming.StreamedBatches`, with the same `batches(epoch, start)` interface.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass
class Batch:
    ids: torch.Tensor  # (B, T) long, padded with pad_id: the decoder's ids
    mask: torch.Tensor  # (B, T) bool, True at real tokens
    lengths: torch.Tensor  # (B,) long
    index: torch.Tensor  # (B,) long, position of each unit in the dataset (labels etc.)
    encoder_ids: torch.Tensor | None = None  # (B, S) when the encoder has its own tokenizer
    encoder_mask: torch.Tensor | None = None  # (B, S) bool
    components: torch.Tensor | None = None  # (B,) label-guided mode of each unit, -1: free
    features: torch.Tensor | None = None  # (B, H) a frozen encoder's pooled features

    @property
    def source(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What the encoder reads: its own ids and mask, else the decoder's."""
        if self.encoder_ids is None or self.encoder_mask is None:
            return self.ids, self.mask
        return self.encoder_ids, self.encoder_mask

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(None if value is None else value.to(device, non_blocking=True)
                       for value in (getattr(self, f.name) for f in fields(self))))


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items; the last may be shorter."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def training_batches(order: list[int], batch_size: int) -> list[list[int]]:
    """`order` cut into batches of `batch_size`, except that a last batch of one unit joins
    the one before: a batch's MMD needs two codes (a batch size of 1 is the config's own)."""
    batches = list(chunks(order, batch_size))
    if batch_size > 1 and len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


def pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists padded to the longest one: ids (B, T) and mask (B, T)."""
    lengths = torch.tensor([len(seq) for seq in sequences], dtype=torch.long)  # (B,)
    mask = torch.arange(int(lengths.max())) < lengths[:, None]  # (B, T)
    ids = torch.full(mask.shape, pad_id, dtype=torch.long)  # (B, T)
    ids[mask] = torch.tensor([tok for seq in sequences for tok in seq], dtype=torch.long)
    return ids, mask


def collate(sequences: list[list[int]], indices: list[int], pad_id: int,
            encoder: tuple[list[list[int]], int] | None = None) -> Batch:
    """Pad token-id lists into a `Batch`; `encoder` gives the encoder's own token-id lists
    of the same units and its pad id, when it has its own tokenizer."""
    if not sequences or len(sequences) != len(indices):
        raise ValueError(
            f"collate needs one index per sequence and at least one sequence, got "
            f"{len(sequences)} sequences and {len(indices)} indices"
        )
    ids, mask = pad(sequences, pad_id)
    encoder_ids, encoder_mask = (None, None) if encoder is None else pad(*encoder)
    return Batch(ids, mask, mask.sum(dim=1), torch.tensor(indices, dtype=torch.long),
                 encoder_ids, encoder_mask)


@dataclass
class TokenizedTexts:
    """Token ids of a list of units, which batches are cut from: the decoder's, and the
    encoder's when it has its own tokenizer (a pretrained part's)."""

    ids: Sequence[list[int]]
    pad_id: int
    encoder_ids: Sequence[list[int]] | None = None
    encoder_pad_id: int = 0
    components: torch.Tensor | None = None  # (N,) label-guided mode of each unit, -1: free
    # (N, H) a frozen encoder's pooled features of each unit (a tensor, or cached
    # `textwae.text.feature_cache.FeatureRows`), which the encoder then need not compute
    features: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, indices: list[int]) -> Batch:
        encoder = (None if self.encoder_ids is None
                   else ([self.encoder_ids[i] for i in indices], self.encoder_pad_id))
        batch = collate([self.ids[i] for i in indices], indices, self.pad_id, encoder)
        if self.components is not None:
            batch.components = self.components[indices]
        if self.features is not None:
            batch.features = self.features[indices]
        return batch


class BucketBatchSampler:
    """Length-bucketed batches: sort by length inside pools of `pool_batches * batch_size`
    shuffled examples, cut into batches, shuffle the batches. Deterministic given (seed, epoch).

    Pools keep batches random across epochs while each batch holds similar lengths. For
    torch.distributed, the epoch's global batch list is dealt round-robin to `num_replicas`
    ranks after trimming its tail, so every rank runs the same number of steps. Evaluation
    takes its batches from `evaluation_batches`.
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        seed: int = 0,
        pool_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ValueError("batch_size and pool_batches must be positive")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} must lie in [0, num_replicas={num_replicas})")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool_batches = pool_batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        if len(self) == 0:
            # An empty epoch would make a step-counting training loop spin forever.
            raise ValueError(
                f"{len(self.lengths)} units give no batch of {batch_size} for each of "
                f"{num_replicas} rank(s)"
            )

    def __len__(self) -> int:
        n = len(self.lengths)
        total = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if not self.drop_last and 1 < self.batch_size < n and n % self.batch_size == 1:
            total -= 1  # the lone last unit joins the batch before (`training_batches`)
        return total // self.num_replicas

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's index batches of one epoch, in the order to run them."""
        rng = random.Random(f"{self.seed}:{epoch}")  # str seeds hash stably across runs
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        pool = self.pool_batches * self.batch_size
        pools = (order[s : s + pool] for s in range(0, len(order), pool))
        order = [i for chunk in pools for i in sorted(chunk, key=self.lengths.__getitem__)]
        batches = (list(chunks(order, self.batch_size)) if self.drop_last
                   else training_batches(order, self.batch_size))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        rng.shuffle(batches)
        usable = len(batches) // self.num_replicas * self.num_replicas
        return batches[self.rank : usable : self.num_replicas]


def evaluation_batches(lengths: Sequence[int], batch_size: int, max_batches: int | None = None,
                       seed: int = 0) -> list[list[int]]:
    """Index batches for evaluation, in ascending length: of every unit, or of a fixed random
    subset of `max_batches * batch_size` units (the first batches of the whole sorted order
    would hold only the shortest units, and a validation of those alone misjudges a model)."""
    chosen: Sequence[int] = range(len(lengths))
    if max_batches is not None and max_batches * batch_size < len(lengths):
        chosen = random.Random(seed).sample(chosen, max_batches * batch_size)
    return list(chunks(sorted(chosen, key=lambda i: (lengths[i], i)), batch_size))


class SampledBatches:
    """Batches of in-memory token ids in the order a `BucketBatchSampler` gives."""

    def __init__(self, texts: TokenizedTexts, sampler: BucketBatchSampler) -> None:
        self.texts, self.sampler = texts, sampler

    def batches(self, epoch: int, start: int = 0) -> Generator[Batch, None, None]:
        """Collated batches of one epoch from batch number `start` on (exact mid-epoch resume)."""
        for indices in self.sampler.batches(epoch)[start:]:
            yield self.texts.batch(indices)
