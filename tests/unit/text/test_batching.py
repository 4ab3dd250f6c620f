"""Padding, length buckets and the order of an epoch's batches."""

from __future__ import annotations

import random
import statistics

import pytest
import torch

from textwae.text.batching import (
    BucketBatchSampler,
    SampledBatches,
    TokenizedTexts,
    collate,
    evaluation_batches,
)


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


def test_evaluation_batches_cover_every_unit_in_ascending_length():
    lengths = random_lengths(100)
    batches = evaluation_batches(lengths, batch_size=7)
    assert [len(b) for b in batches] == [7] * 14 + [2]
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths) and sorted(i for b in batches for i in b) == list(range(100))


def test_a_limited_evaluation_is_a_fixed_random_subset_not_the_shortest_units():
    lengths = list(range(1, 1001))  # unit i has length i + 1
    batches = evaluation_batches(lengths, batch_size=10, max_batches=5, seed=3)
    chosen = [i for b in batches for i in b]
    assert len(set(chosen)) == 50 and [lengths[i] for i in chosen] == sorted(
        lengths[i] for i in chosen)
    assert max(chosen) > 500  # the first 5 of all 100 sorted batches end at unit 49
    assert batches == evaluation_batches(lengths, batch_size=10, max_batches=5, seed=3)
    assert batches != evaluation_batches(lengths, batch_size=10, max_batches=5, seed=4)
    assert evaluation_batches(lengths[:30], batch_size=10, max_batches=5) == (
        evaluation_batches(lengths[:30], batch_size=10))  # fewer units than the limit: all


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
