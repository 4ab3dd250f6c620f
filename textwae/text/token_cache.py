"""Token ids of a corpus, computed once through `datasets.map` and cached as Arrow files.

Without a cache directory the ids are plain lists in memory, as the tokenizer returns them.
With one, the ids and each unit's length are saved with `save_to_disk` under a folder named by
a hash of the texts, the tokenizer's fingerprint and `max_length`, and every run (the first
included) reads them back with `load_from_disk`: a memory map of the Arrow files. A changed
corpus, tokenizer or length limit gives another key, so a stale cache is never read.

Cached ids stay in the Arrow files: `TokenSequences` decodes one row when a batch asks for it
and keeps only the lengths column in memory (the batch sampler needs every length). Python
lists of ints take about 36 bytes a token against 4 in Arrow, and the pages of the memory map
are shared by every process of a `torchrun` job and by the page cache across runs.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

from textwae.errors import DataError
from textwae.text.batching import TokenizedTexts
from textwae.text.tokenizers import AnyTokenizer

CACHE_VERSION = "1"  # bump when the cached layout changes: old folders are then ignored


def cache_key(texts: Sequence[str], tokenizer: AnyTokenizer, max_length: int) -> str:
    """Hash of the texts' content (in order), the tokenizer's fingerprint and `max_length`."""
    return texts_digest(f"textwae-tokens-v{CACHE_VERSION}\0{tokenizer.fingerprint()}\0"
                        f"{max_length}\0", texts)


def texts_digest(header: str, texts: Sequence[str]) -> str:
    """Hash of `header` and the texts' content, in order: a cache folder's key."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(header.encode())
    for text in texts:
        data = text.encode("utf-8", errors="surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))  # length-prefixed: no ambiguous joins
        digest.update(data)
    return digest.hexdigest()


class TokenSequences(Sequence[list[int]]):
    """Read-only sequence of token-id lists over a cached Arrow dataset (memory-mapped).

    `sequences[i]` decodes row i alone; `lengths` holds every row's length in memory.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset  # holds the memory map open
        column = dataset.data.column("ids")  # pyarrow ChunkedArray over the mapped files
        self._chunks = column.chunks
        self._starts = list(itertools.accumulate((len(c) for c in self._chunks), initial=0))
        self.lengths: list[int] = dataset.data.column("length").to_pylist()

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, index: int) -> list[int]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[int]]: ...

    def __getitem__(self, index: int | slice) -> list[int] | list[list[int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} sequences")
        chunk = bisect.bisect_right(self._starts, index) - 1
        return self._chunks[chunk][index - self._starts[chunk]].as_py()


def sequence_lengths(sequences: Sequence[Sequence[int]]) -> list[int]:
    """Every sequence's length; cached sequences answer from their lengths column."""
    if isinstance(sequences, TokenSequences):
        return sequences.lengths
    return [len(sequence) for sequence in sequences]


def tokenize(texts: list[str], tokenizer: AnyTokenizer, max_length: int,
             cache_dir: str | Path | None = None) -> Sequence[list[int]]:
    """Token ids of `texts` (bos/eos framed, cut to `max_length`), cached under `cache_dir`.

    A folder whose key matches is reused without calling the tokenizer. A new one is written
    to a temporary folder and renamed, so a killed run or a concurrent rank never leaves a
    half-written cache behind.
    """
    if cache_dir is None:
        return tokenizer.encode_batch(texts, max_length)
    import datasets  # imported here: it takes a second and only the cache needs it

    folder = Path(cache_dir).expanduser() / f"tokens-{cache_key(texts, tokenizer, max_length)}"
    if not folder.is_dir():
        _build(texts, tokenizer, max_length, folder)
    try:
        dataset = datasets.load_from_disk(str(folder))
    except (OSError, ValueError) as error:
        raise DataError(f"{folder}: the token cache cannot be read ({error}); delete the "
                        "folder to rebuild it") from error
    if len(dataset) != len(texts) or not {"ids", "length"} <= set(dataset.column_names):
        raise DataError(f"{folder}: the token cache does not match the corpus; delete the "
                        "folder to rebuild it")
    return TokenSequences(dataset)


def tokenize_texts(texts: list[str], tokenizer: AnyTokenizer, encoder_tokenizer: AnyTokenizer,
                   max_length: int, cache_dir: str | Path | None = None) -> TokenizedTexts:
    """The decoder's token ids of `texts`, and the encoder's when its tokenizer is another."""
    ids = tokenize(texts, tokenizer, max_length, cache_dir)
    if encoder_tokenizer is tokenizer:
        return TokenizedTexts(ids, tokenizer.pad_id)
    return TokenizedTexts(ids, tokenizer.pad_id,
                          tokenize(texts, encoder_tokenizer, max_length, cache_dir),
                          encoder_tokenizer.pad_id)


def _build(texts: list[str], tokenizer: AnyTokenizer, max_length: int, folder: Path) -> None:
    """Tokenise with `datasets.map` (batched) and save the ids and lengths into `folder`."""
    import datasets  # imported here, as above: it takes a second

    def encode(batch: dict[str, list[str]]) -> dict[str, list[Any]]:
        ids = tokenizer.encode_batch(batch["text"], max_length)
        return {"ids": ids, "length": [len(row) for row in ids]}

    features = datasets.Features({"ids": datasets.Sequence(datasets.Value("int32")),
                                  "length": datasets.Value("int32")})
    # the key already names the result: no need for `datasets` to hash the tokenizer
    encoded = datasets.Dataset.from_dict({"text": texts}).map(
        encode, batched=True, remove_columns=["text"], features=features,
        new_fingerprint=folder.name, desc="tokenize")
    save_dataset(encoded, folder)


def save_dataset(encoded: Any, folder: Path) -> None:
    """`save_to_disk` into a temporary folder renamed to `folder`: a killed run or a
    concurrent rank never leaves a half-written cache behind."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    encoded.save_to_disk(str(temporary))
    try:
        os.rename(temporary, folder)
    except OSError:
        if not folder.is_dir():  # not another process that finished first: a real failure
            raise
        shutil.rmtree(temporary, ignore_errors=True)
