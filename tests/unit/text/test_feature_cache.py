"""The feature cache of a frozen encoder: computed once per key, memory-mapped rows that index
like an (N, H) tensor, and a key that changes with the texts, the encoder and the length."""

import pytest
import torch

from textwae.errors import DataError
from textwae.text.batching import TokenizedTexts
from textwae.text.feature_cache import CHUNK, FeatureRows, feature_key, unit_features

WIDTH = 3


def features_of(indices) -> torch.Tensor:
    """Made-up features: row i is (i, i + 0.5, -i)."""
    index = torch.tensor(list(indices), dtype=torch.float32)[:, None]
    return torch.cat([index, index + 0.5, -index], dim=1)


def test_cached_rows_span_chunks_and_index_like_a_tensor(tmp_path):
    texts = [f"unit {i}" for i in range(2 * CHUNK + 7)]  # three chunks of computation
    calls = []

    def compute(indices):
        calls.append(len(indices))
        return features_of(indices)

    rows = unit_features(texts, "enc", 16, WIDTH, compute, tmp_path)
    assert isinstance(rows, FeatureRows) and calls == [CHUNK, CHUNK, 7]
    assert rows.shape == (len(texts), WIDTH) and len(rows) == len(texts)
    picked = [0, CHUNK - 1, CHUNK, 2 * CHUNK + 6, 5, 5]
    torch.testing.assert_close(rows[picked], features_of(picked), rtol=0, atol=0)
    torch.testing.assert_close(rows[torch.tensor(picked)], features_of(picked), rtol=0, atol=0)
    with pytest.raises(IndexError):
        rows[[len(texts)]]
    # the same key is read back without computing; a batch gathers its units' rows
    again = unit_features(texts, "enc", 16, WIDTH, compute, tmp_path)
    assert calls == [CHUNK, CHUNK, 7]
    tokenized = TokenizedTexts([[2, 5, 3]] * len(texts), 0, features=again)
    torch.testing.assert_close(tokenized.batch([4, CHUNK + 1]).features,
                               features_of([4, CHUNK + 1]), rtol=0, atol=0)
    # in memory: a plain tensor, computed every time
    in_memory = unit_features(texts[:10], "enc", 16, WIDTH, compute)
    assert isinstance(in_memory, torch.Tensor) and in_memory.shape == (10, WIDTH)


def test_the_key_follows_texts_encoder_and_length():
    texts = ["a b", "c"]
    key = feature_key(texts, "enc", 16)
    assert key == feature_key(list(texts), "enc", 16)
    assert len({key, feature_key(["a", "b c"], "enc", 16), feature_key(texts, "other", 16),
                feature_key(texts, "enc", 17), feature_key(texts[::-1], "enc", 16)}) == 5


def test_a_cache_of_another_width_is_refused(tmp_path):
    texts = ["x", "y"]
    unit_features(texts, "enc", 16, WIDTH, features_of, tmp_path)
    folder = next(tmp_path.glob("features-*"))
    wider = folder.with_name(f"features-{feature_key(texts, 'enc2', 16)}")
    folder.rename(wider)  # as if another encoder's features sat under this key
    with pytest.raises(DataError, match="does not match"):
        unit_features(texts, "enc2", 16, WIDTH + 1, features_of, tmp_path)
