"""The run's own tokenizer (`tokenizer.type`), made from the training split when a run
starts and kept in the run directory: SentencePiece, or the pieces of generation.lm's
tokenizer that the split uses, read with that LM's tokenizer files again at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textwae.config.schema import Config
from textwae.models.pretrained import resolve_directory
from textwae.runs import checkpoint
from textwae.text.tokenizers import LMTokenizer, Tokenizer

RunTokenizer = Tokenizer | LMTokenizer
FILES = {"sentencepiece": checkpoint.TOKENIZER_FILE, "lm": checkpoint.LM_TOKENIZER_FILE}


def run_tokenizer_file(config: Config) -> str:
    """The name of the run's tokenizer file in its run directory."""
    return FILES[config.tokenizer.type]


def train_run_tokenizer(texts: Sequence[str], config: Config,
                        symbols: Sequence[str] = ()) -> RunTokenizer:
    """The run's tokenizer made from `texts` (the training split); SentencePiece keeps each
    of `symbols` one piece (an LM's tokenizer has its own pieces for them)."""
    if config.tokenizer.type == "lm":
        return LMTokenizer.train(texts, _lm_folder(config), str(config.generation.lm))
    return Tokenizer.train(texts, config.tokenizer, symbols)


def load_run_tokenizer(config: Config, run_dir: str | Path) -> RunTokenizer:
    """The run's tokenizer, read from its file in `run_dir`."""
    path = Path(run_dir) / run_tokenizer_file(config)
    if config.tokenizer.type == "lm":
        return LMTokenizer.load(path, _lm_folder(config), str(config.generation.lm))
    return Tokenizer.load(path)


def _lm_folder(config: Config) -> str:
    """generation.lm's folder (Config.check makes sure there is one)."""
    return resolve_directory(str(config.generation.lm), "generation.lm")
