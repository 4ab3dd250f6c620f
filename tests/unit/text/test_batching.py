"""Padding, length buckets and the order of an epoch's batches."""

from __future__ import annotations

import random
import statistics

import pytest
import torch

from textwae.text.batching import BucketBatchSampler, SampledBatches, TokenizedTexts, collate


def test_collate_pads_and_masks():
    batch = collate([[5, 6, 7], [8], [9, 10]], indices=[4, 0, 2], pad_id=0)
    assert batch.ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert batch.mask.tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    assert batch.lengths.tolist() == [3, 1, 2]
    assert batch.index.tolist() == [4, 0, 2]
    assert batch.ids.dtype == torch.long and batch.mask.dtype == torch.bool
    moved = batch.to("cpu")
    assert torch.equal(moved.ids, batch.ids) and torch.equal(moved.index, batch.index)


def random_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(3, 64) for _ in range(n)]


def spread(batches: list[list[int]], lengths: list[int]) -> float:
    return statistics.mean(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)


def test_bucket_sampler_covers_every_index_once_with_low_spread():
    lengths = random_lengths(1003)
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=3, pool_batches=10)
    batches = sampler.batches(epoch=0)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for b in batches for i in b) == list(range(1003))
    shuffled = list(range(1003))
    random.Random(0).shuffle(shuffled)
    random_batches = [shuffled[s : s + 16] for s in range(0, 1003, 16)]
    assert spread(batches, lengths) < 0.25 * spread(random_batches, lengths)


def test_bucket_sampler_is_deterministic_per_seed_and_epoch():
    lengths = random_lengths(500)

    def make(seed: int) -> BucketBatchSampler:
        return BucketBatchSampler(lengths, batch_size=8, seed=seed, pool_batches=4)

    assert make(0).batches(1) == make(0).batches(1)
    assert make(0).batches(1) != make(0).batches(2)
    assert make(0).batches(1) != make(1).batches(1)


def test_bucket_sampler_drop_last():
    sampler = BucketBatchSampler(random_lengths(50), batch_size=8, drop_last=True)
    batches = sampler.batches(0)
    assert len(batches) == len(sampler) == 6 and all(len(b) == 8 for b in batches)


def test_bucket_sampler_replicas_get_disjoint_equal_shares():
    lengths = random_lengths(203)
    ranks = [
        BucketBatchSampler(lengths, batch_size=10, seed=1, num_replicas=2, rank=r).batches(5)
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 10  # 21 batches, the odd one trimmed
    seen = [{i for b in batches for i in b} for batches in ranks]
    assert seen[0].isdisjoint(seen[1])
    assert BucketBatchSampler(lengths, batch_size=10, num_replicas=2, rank=1).__len__() == 10


def test_bucket_sampler_without_shuffle_is_sorted_and_fixed():
    lengths = random_lengths(100)
    sampler = BucketBatchSampler(lengths, batch_size=7, shuffle=False)
    batches = sampler.batches(0)
    assert batches == sampler.batches(9)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths) and len(flat) == 100


def test_bucket_sampler_rejects_an_empty_epoch():
    with pytest.raises(ValueError, match="no batch"):
        BucketBatchSampler([5, 6, 7], batch_size=1, num_replicas=4, rank=0)


def test_sampled_batches_resume_mid_epoch():
    lengths = random_lengths(90)
    sequences = [list(range(1, n + 1)) for n in lengths]
    sampler = BucketBatchSampler(lengths, batch_size=8, seed=2)
    texts = TokenizedTexts(sequences, pad_id=0)
    full = list(SampledBatches(texts, sampler).batches(epoch=3))
    tail = list(SampledBatches(texts, sampler).batches(epoch=3, start=5))
    assert len(tail) == len(full) - 5 > 0
    for a, b in zip(full[5:], tail, strict=True):
        assert torch.equal(a.ids, b.ids) and torch.equal(a.index, b.index)
    first = full[0]
    assert first.lengths.tolist() == [lengths[i] for i in first.index.tolist()]
