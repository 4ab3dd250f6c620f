"""A frozen encoder's pooled features of a corpus, computed once per unit and cached.

With `model.freeze_encoder` a training step needs only each unit's pooled encoder vector,
which never changes while training, so it is computed once. Without a cache directory the
features are one (N, H) tensor for the run. With one (`data.cache_dir`, beside the token ids),
they go through `datasets.map` into an Arrow dataset in a folder `features-KEY`, KEY a hash of
the texts, the encoder's fingerprint (its weights, tokenizer and pooling) and `max_length`,
and every run (the first included) memory-maps it back: a changed corpus, encoder or length
limit gives another key, so stale features are never read.
"""

from __future__ import annotations

import bisect
import itertools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from textwae.errors import DataError
from textwae.text.batching import chunks
from textwae.text.token_cache import save_dataset, texts_digest

FEATURE_VERSION = "1"  # bump when the cached layout changes: old folders are then ignored
CHUNK = 1024  # units whose features are computed (and written) at once

# indices (at most CHUNK) -> their features (len(indices), H), float32 on the CPU
Compute = Callable[[list[int]], torch.Tensor]


def feature_key(texts: Sequence[str], encoder_fingerprint: str, max_length: int) -> str:
    """Hash of the texts' content (in order), the encoder's fingerprint and `max_length`."""
    return texts_digest(f"textwae-features-v{FEATURE_VERSION}\0{encoder_fingerprint}\0"
                        f"{max_length}\0", texts)


class FeatureRows:
    """Read-only (N, H) features over a cached Arrow dataset (memory-mapped, not copied):
    `rows[indices]` is a (B, H) tensor, like indexing an (N, H) tensor."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset  # holds the memory map open
        column = dataset.data.column("features")  # fixed-size lists of float32
        width = column.type.list_size
        with warnings.catch_warnings():  # the mapped buffers are read-only, and never written
            warnings.simplefilter("ignore", UserWarning)
            self._chunks = [torch.from_numpy(chunk.flatten().to_numpy(zero_copy_only=True))
                            .view(-1, width) for chunk in column.chunks]
        self._starts = list(itertools.accumulate((len(c) for c in self._chunks), initial=0))
        self.shape = (self._starts[-1], width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
        indices = [int(i) for i in indices]
        if not all(0 <= i < len(self) for i in indices):
            raise IndexError(f"feature index out of range for {len(self)} units")
        rows = []
        for i in indices:
            chunk = bisect.bisect_right(self._starts, i) - 1
            rows.append(self._chunks[chunk][i - self._starts[chunk]])
        return torch.stack(rows) if rows else torch.empty(0, self.shape[1])


def unit_features(texts: Sequence[str], encoder_fingerprint: str, max_length: int, width: int,
                  compute: Compute, cache_dir: str | Path | None = None,
                  ) -> torch.Tensor | FeatureRows:
    """Features (N, H=`width`) of `texts`, by `compute` on chunks of indices, cached under
    `cache_dir` if given (a folder whose key matches is reused without calling `compute`).
    A new folder is written to a temporary folder and renamed, as the token cache is."""
    if cache_dir is None:
        parts = [compute(chunk) for chunk in tqdm(
            list(chunks(range(len(texts)), CHUNK)), desc="encoder features", leave=False,
            disable=None)]
        return torch.cat(parts) if parts else torch.empty(0, width)
    import datasets  # imported here: it takes a second and only the cache needs it

    key = feature_key(texts, encoder_fingerprint, max_length)
    folder = Path(cache_dir).expanduser() / f"features-{key}"
    if not folder.is_dir():
        features = datasets.Features({"features": datasets.Sequence(datasets.Value("float32"),
                                                                    length=width)})
        # the key already names the result: no need for `datasets` to hash `compute`
        computed = datasets.Dataset.from_dict({"index": list(range(len(texts)))}).map(
            lambda batch: {"features": compute(batch["index"]).numpy()}, batched=True,
            batch_size=CHUNK, remove_columns=["index"], features=features,
            new_fingerprint=folder.name, desc="encoder features")
        save_dataset(computed, folder)
    try:
        dataset = datasets.load_from_disk(str(folder))
    except (OSError, ValueError) as error:
        raise DataError(f"{folder}: the feature cache cannot be read ({error}); delete the "
                        "folder to rebuild it") from error
    if (len(dataset) != len(texts) or dataset.column_names != ["features"]
            or dataset.features["features"].length != width):
        raise DataError(f"{folder}: the feature cache does not match the corpus and encoder; "
                        "delete the folder to rebuild it")
    return FeatureRows(dataset)
