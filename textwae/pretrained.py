"""Local pretrained `transformers` models used as the encoder or the decoder.

A pretrained part is accepted only when it reads this run's token ids: its embedding table
has the run's vocabulary size and its directory carries no tokenizer of its own. A part with
its own tokenizer (a BERT or GPT-2 checkpoint as published) is not supported yet.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from textwae.config import ConfigError
from textwae.tokenizer import PAD_ID

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")


def load_pretrained(auto_class: type, path: str, vocab_size: int, key: str) -> nn.Module:
    """`auto_class.from_pretrained(path)` from local files, checked against the run's vocabulary.

    `key` names the config key that gave `path`, so errors say what to change.
    """
    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{key}: {path} is not a local pretrained model directory "
                          "(no config.json)")
    own = [name for name in TOKENIZER_FILES if (directory / name).is_file()]
    if own:
        raise ConfigError(
            f"{key}: {path} brings its own tokenizer ({', '.join(own)}); a pretrained part "
            "with its own tokenizer is not supported yet. Use a model trained on this run's "
            "SentencePiece vocabulary, saved without tokenizer files.")
    try:
        model = auto_class.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: cannot load {path}: {error}") from error
    model = model.float()  # recent transformers keep a checkpoint's own dtype, e.g. bf16
    rows = model.get_input_embeddings().num_embeddings
    pad = getattr(model.config, "pad_token_id", None)
    if rows != vocab_size or pad not in (None, PAD_ID):
        raise ConfigError(
            f"{key}: {path} has a vocabulary of {rows} tokens (pad id {pad}), this run's has "
            f"{vocab_size} (pad id {PAD_ID}); a pretrained part with its own tokenizer is not "
            "supported yet")
    return model

