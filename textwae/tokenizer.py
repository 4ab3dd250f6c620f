"""SentencePiece tokenizer trained on the training split and stored in the run directory."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from textwae.config import TokenizerConfig

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class TokenizerError(ValueError):
    """A tokenizer file that is missing, unreadable or does not fit the model."""


class Tokenizer:
    """Text <-> ids with fixed special ids: pad 0, unk 1, bos 2, eos 3."""

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, processor: spm.SentencePieceProcessor) -> None:
        self.processor = processor

    @classmethod
    def train(cls, texts: Iterable[str], cfg: TokenizerConfig) -> Tokenizer:
        """Train on `texts` (the training split only, so validation stays unseen)."""
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=model,
                model_type=cfg.model_type,
                vocab_size=cfg.vocab_size,
                character_coverage=cfg.character_coverage,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                hard_vocab_limit=False,  # a small corpus may not support the requested size
                max_sentence_length=1 << 16,  # stories are longer than the 4k default
                minloglevel=2,
            )
        except RuntimeError as error:  # e.g. a vocabulary smaller than the corpus's characters
            reason = str(error).rsplit("] ", 1)[-1]
            raise TokenizerError(f"cannot train the tokenizer (tokenizer.vocab_size="
                                 f"{cfg.vocab_size}): {reason}") from error
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
