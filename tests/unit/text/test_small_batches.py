"""Training batches of a small split (issue 36.6): no batch holds a lone unit, whose MMD would
need a second code, unless the configured batch size is 1."""

import pytest

from textwae.text.batching import BucketBatchSampler, training_batches


@pytest.mark.parametrize("n, batch_size, sizes", [
    (9, 8, [9]), (17, 8, [8, 9]), (16, 8, [8, 8]), (10, 8, [8, 2]), (1, 8, [1]), (3, 1, [1] * 3),
])
def test_a_lone_last_unit_joins_the_batch_before(n, batch_size, sizes):
    batches = training_batches(list(range(n)), batch_size)
    assert [len(batch) for batch in batches] == sizes
    assert [i for batch in batches for i in batch] == list(range(n))


@pytest.mark.parametrize("n", [2, 9, 17, 25, 26])
def test_the_sampler_never_gives_a_batch_of_one_and_counts_its_batches(n):
    sampler = BucketBatchSampler(list(range(n)), batch_size=8, seed=0, pool_batches=1)
    for epoch in range(3):
        batches = sampler.batches(epoch)
        assert len(batches) == len(sampler) and min(map(len, batches)) >= 2
        assert sorted(i for batch in batches for i in batch) == list(range(n))
