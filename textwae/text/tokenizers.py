"""Tokenizers: SentencePiece trained on the training split and stored in the run directory,
an adapter that gives a pretrained part's own `transformers` tokenizer the same interface, and
the pieces of a pretrained LM's tokenizer that the training split uses (tokenizer.type=lm), so
that the run's decoder speaks the LM's pieces and the LM can join its every step.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sentencepiece as spm

from textwae.config.schema import TokenizerConfig
from textwae.errors import TokenizerError
from textwae.text.batching import chunks
from textwae.text.local_models import LOAD_OPTIONS, check_directory, loader_output_to_stderr

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
# SentencePiece skips a training unit longer than this many UTF-8 bytes (its
# max_sentence_length); stories are longer than its 4k default.
MAX_UNIT_BYTES = 1 << 16
SPECIAL_IDS = 4  # pad, unk, bos, eos: the first compact ids of an LMTokenizer
UNK_TEXT = "\u2047"  # how decoded text shows an unk of an LMTokenizer (as SentencePiece does)
ENCODE_BATCH = 1024  # texts an LMTokenizer's LM tokenizer reads at once while it is made


class Tokenizer:
    """Text <-> ids with fixed special ids: pad 0, unk 1, bos 2, eos 3."""

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, processor: spm.SentencePieceProcessor) -> None:
        self.processor = processor

    @classmethod
    def train(cls, texts: Iterable[str], cfg: TokenizerConfig,
              symbols: Sequence[str] = ()) -> Tokenizer:
        """Train on `texts` (the training split only, so validation stays unseen); each of
        `symbols` (the roles of masked names) is kept one piece."""
        model = io.BytesIO()
        counts = [0, 0]  # units read, and those longer than MAX_UNIT_BYTES

        def measured() -> Iterator[str]:
            for text in texts:
                counts[0] += 1
                # a character is at most 4 bytes: encode only what may be too long
                counts[1] += (len(text) > MAX_UNIT_BYTES // 4
                              and len(text.encode("utf-8", "surrogatepass")) > MAX_UNIT_BYTES)
                yield text

        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=measured(),
                model_writer=model,
                model_type=cfg.model_type,
                vocab_size=cfg.vocab_size,
                character_coverage=cfg.character_coverage,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                hard_vocab_limit=False,  # a small corpus may not support the requested size
                max_sentence_length=MAX_UNIT_BYTES,
                minloglevel=2,
                user_defined_symbols=list(symbols),
            )
        except RuntimeError as error:  # e.g. a vocabulary smaller than the corpus's characters
            raise TokenizerError(f"cannot train the tokenizer (tokenizer.vocab_size="
                                 f"{cfg.vocab_size}): {_reason(error, *counts)}") from error
        return cls(spm.SentencePieceProcessor(model_proto=model.getvalue()))

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        try:
            proto = Path(path).read_bytes()
        except OSError as error:
            raise TokenizerError(f"cannot read tokenizer {path}: {error.strerror}") from error
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(proto)
        except RuntimeError as error:
            raise TokenizerError(f"{path} is not a SentencePiece model") from error
        return cls(processor)

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.processor.serialized_model_proto())

    def fingerprint(self) -> str:
        """sha256 of the model proto: ties a checkpoint to the tokenizer it was trained with."""
        return hashlib.sha256(self.processor.serialized_model_proto()).hexdigest()

    @property
    def vocab_size(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        return self.encode_batch([text], max_length)[0]

    def encode_batch(self, texts: list[str], max_length: int | None = None) -> list[list[int]]:
        """Ids framed by bos and eos; each body is cut so the whole fits `max_length`."""
        bodies = self.processor.encode(texts)
        cut = slice(None) if max_length is None else slice(max_length - 2)
        return [[BOS_ID, *body[cut], EOS_ID] for body in bodies]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids up to the first eos, special ids dropped."""
        kept = []
        for token in ids:
            if token == EOS_ID:
                break
            if token not in (PAD_ID, BOS_ID):
                kept.append(int(token))
        return self.processor.decode(kept)


class PretrainedTokenizer:
    """A pretrained part's own `transformers` tokenizer with the interface of `Tokenizer`.

    Units are framed by bos and eos as with SentencePiece: bos is the tokenizer's bos token,
    else its cls token (BERT's [CLS]); eos its eos, else its sep token. Tokens a tokenizer
    lacks are added as new special tokens (GPT-2 has no pad, and its unk is its eos;
    SmolLM2's pad is its eos), which
    grows the part's embedding table; the saved tokenizer keeps them, so loading it again
    adds nothing and gives the same ids.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        missing = {}
        if tokenizer.bos_token_id is None and tokenizer.cls_token_id is None:
            missing["bos_token"] = "<bos>"
        if tokenizer.eos_token_id is None and tokenizer.sep_token_id is None:
            missing["eos_token"] = "<eos>"
        if tokenizer.pad_token_id is None or tokenizer.pad_token_id in (
                tokenizer.bos_token_id, tokenizer.eos_token_id):
            missing["pad_token"] = "<pad>"  # a pad that is eos would hide the eos target
        if tokenizer.unk_token_id is None or tokenizer.unk_token_id in (
                tokenizer.bos_token_id, tokenizer.eos_token_id):
            missing["unk_token"] = "<unk>"  # word dropout must not feed in an eos
        tokenizer.add_special_tokens(missing)
        self.tokenizer = tokenizer
        self.bos_id = _first_id(tokenizer.bos_token_id, tokenizer.cls_token_id)
        self.eos_id = _first_id(tokenizer.eos_token_id, tokenizer.sep_token_id)
        self.pad_id, self.unk_id = tokenizer.pad_token_id, tokenizer.unk_token_id

    @classmethod
    def load(cls, path: str | Path) -> PretrainedTokenizer:
        """`AutoTokenizer` from local files only, running no code of the directory."""
        return cls(_auto_tokenizer(path))

    def save(self, path: str | Path) -> None:
        """Write the tokenizer's files (added special tokens included) into folder `path`."""
        self.tokenizer.save_pretrained(str(path))

    def fingerprint(self) -> str:
        """sha256 of the vocabulary, the added tokens and the special ids."""
        digest = _vocabulary_digest(self.tokenizer)
        digest.update(f"{self.bos_id},{self.eos_id},{self.pad_id},{self.unk_id}".encode())
        return digest.hexdigest()

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        return self.encode_batch([text], max_length)[0]

    def encode_batch(self, texts: list[str], max_length: int | None = None) -> list[list[int]]:
        """Ids framed by bos and eos; each body is cut so the whole fits `max_length`."""
        cut = {} if max_length is None else {"truncation": True, "max_length": max_length - 2}
        bodies = self.tokenizer(texts, add_special_tokens=False, **cut)["input_ids"]
        return [[self.bos_id, *body, self.eos_id] for body in bodies]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids up to the first eos (a leading bos skipped), special ids dropped."""
        ids = [int(token) for token in ids]
        if ids and ids[0] == self.bos_id:  # bos may equal eos (GPT-2)
            ids = ids[1:]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)


class LMTokenizer:
    """The pieces of a pretrained LM's tokenizer that occur in the training split, with ids of
    their own after pad 0, unk 1, bos 2, eos 3: a compact vocabulary, so that a decoder's
    softmax stays small, whose every id maps back to the LM's (`pieces`).

    A word of a text that needs a piece outside the set becomes one unk (and is shown as
    UNK_TEXT). The file keeps the pieces and the sha256 of the LM's vocabulary, not the LM's
    tokenizer: that is read from the LM's folder, and refused if its vocabulary changed.
    """

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, lm_tokenizer: PreTrainedTokenizerBase, pieces: Sequence[int],
                 lm: str) -> None:
        """`pieces`: the LM ids of compact ids 4, 5, ...; `lm`: the LM's name, for messages."""
        if not lm_tokenizer.is_fast:
            raise TokenizerError(f"tokenizer.type=lm needs the LM's fast tokenizer "
                                 f"(tokenizer.json) to find words; {lm} has none")
        self.lm_tokenizer = lm_tokenizer
        self.pieces = [int(piece) for piece in pieces]
        self.lm = lm
        self.lm_vocabulary = _vocabulary_digest(lm_tokenizer).hexdigest()
        self._compact = {piece: SPECIAL_IDS + i for i, piece in enumerate(self.pieces)}

    @classmethod
    def train(cls, texts: Iterable[str], folder: str | Path, lm: str) -> LMTokenizer:
        """The LM's pieces (its special tokens aside) that `texts` (the training split) use,
        most frequent first (an adaptive softmax expects that order)."""
        tokenizer = _auto_tokenizer(folder)
        special = set(tokenizer.all_special_ids)
        counts: Counter[int] = Counter()
        for chunk in chunks(texts, ENCODE_BATCH):
            for row in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
                counts.update(piece for piece in row if piece not in special)
        if not counts:
            raise TokenizerError("cannot make the tokenizer: there is no training text")
        return cls(tokenizer, sorted(counts, key=lambda piece: (-counts[piece], piece)), lm)

    @classmethod
    def load(cls, path: str | Path, folder: str | Path, lm: str) -> LMTokenizer:
        """The pieces saved at `path`, read with the tokenizer in `folder` (the LM `lm`)."""
        try:
            saved = json.loads(Path(path).read_text(encoding="utf-8"))
            pieces, vocabulary = saved["pieces"], saved["lm_vocabulary_sha256"]
            if not all(type(piece) is int and piece >= 0 for piece in pieces):
                raise TypeError("pieces are LM ids")
        except OSError as error:
            raise TokenizerError(f"cannot read tokenizer {path}: {error.strerror}") from error
        except (ValueError, TypeError, KeyError) as error:
            raise TokenizerError(f"{path} is not a tokenizer of LM pieces") from error
        tokenizer = cls(_auto_tokenizer(folder), pieces, lm)
        if tokenizer.lm_vocabulary != vocabulary:
            raise TokenizerError(f"{path} holds pieces of {saved.get('lm')}, whose vocabulary "
                                 f"is not that of {lm}: set generation.lm to the LM the run "
                                 f"was trained with")
        return tokenizer

    def matches(self, lm_tokenizer: PreTrainedTokenizerBase) -> bool:
        """Whether `lm_tokenizer` has the vocabulary these pieces were taken from."""
        return _vocabulary_digest(lm_tokenizer).hexdigest() == self.lm_vocabulary

    def save(self, path: str | Path) -> None:
        saved = {"lm": self.lm, "lm_vocabulary_sha256": self.lm_vocabulary,
                 "pieces": self.pieces}
        Path(path).write_text(json.dumps(saved), encoding="utf-8")

    def fingerprint(self) -> str:
        """sha256 of the LM's vocabulary and the pieces kept, in order."""
        digest = hashlib.sha256(f"{self.lm_vocabulary}\0".encode())
        digest.update(",".join(map(str, self.pieces)).encode())
        return digest.hexdigest()

    @property
    def vocab_size(self) -> int:
        return SPECIAL_IDS + len(self.pieces)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        return self.encode_batch([text], max_length)[0]

    def encode_batch(self, texts: list[str], max_length: int | None = None) -> list[list[int]]:
        """Ids framed by bos and eos; each body is cut so the whole fits `max_length`."""
        encoded = self.lm_tokenizer(texts, add_special_tokens=False)
        cut = slice(None) if max_length is None else slice(max_length - 2)
        return [[BOS_ID, *self._compact_word_ids(row, encoded.word_ids(i))[cut], EOS_ID]
                for i, row in enumerate(encoded["input_ids"])]

    def _compact_word_ids(self, row: list[int], words: list[int | None]) -> list[int]:
        """Compact ids of one text's LM pieces: a word with a piece outside the set is unk."""
        unknown = {word for piece, word in zip(row, words, strict=True)
                   if piece not in self._compact}
        ids: list[int] = []
        previous: int | None = -1  # the word of the piece before (None: a special token)
        for piece, word in zip(row, words, strict=True):
            if word not in unknown:
                ids.append(self._compact[piece])
            elif word != previous:  # a word's pieces are adjacent: one unk at its first
                ids.append(UNK_ID)
            previous = word
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids up to the first eos, pad and bos dropped, unk shown as UNK_TEXT."""
        spans: list[list[int]] = [[]]  # the LM's pieces between unks
        for token in ids:
            token = int(token)
            if token == EOS_ID:
                break
            if token == UNK_ID:
                spans.append([])
            elif SPECIAL_IDS <= token < self.vocab_size:
                spans[-1].append(self.pieces[token - SPECIAL_IDS])
        words: list[str] = []  # each span's text, an UNK_TEXT between two spans
        for i, span in enumerate(spans):
            text = self.lm_tokenizer.decode(span, skip_special_tokens=True).strip()
            words += [UNK_TEXT] * (i > 0) + [text] * bool(text)
        return " ".join(words)


def _auto_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """`AutoTokenizer` from local files only, running no code of the directory."""
    from transformers import AutoTokenizer  # imported here: only pretrained parts need it

    try:
        check_directory(path)
        with loader_output_to_stderr():
            return AutoTokenizer.from_pretrained(str(path), **LOAD_OPTIONS)
    except (OSError, ValueError) as error:
        raise TokenizerError(f"cannot load the tokenizer in {path}: {error}") from error


def _vocabulary_digest(tokenizer: PreTrainedTokenizerBase) -> hashlib._Hash:
    """sha256 over a `transformers` tokenizer's pieces and their ids (added tokens included)."""
    digest = hashlib.sha256()
    for token, index in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        digest.update(f"{index}\0{token}\0".encode("utf-8", errors="surrogatepass"))
    return digest


def _reason(error: RuntimeError, units: int, too_long: int) -> str:
    """Why SentencePiece could not train, for a user: its message (after the source location
    it starts with), or what a bare failed check of its stands for: no unit to learn from."""
    if units == 0:
        return "there is no training text"
    if too_long == units:
        return (f"every training unit ({units}) is longer than SentencePiece's limit of "
                f"{MAX_UNIT_BYTES} bytes, so it has nothing to learn from; break the text into "
                "lines (one unit each), or into sentences with data.unit=sentence")
    message = str(error).strip()
    reason = message.rsplit("] ", 1)[-1].strip() or message
    if too_long:
        reason += (f" ({too_long} of {units} training units were skipped: longer than "
                   f"{MAX_UNIT_BYTES} bytes)")
    return reason


def _first_id(*ids: int | None) -> int:
    return next(index for index in ids if index is not None)


AnyTokenizer = Tokenizer | PretrainedTokenizer | LMTokenizer
