"""Run-directory files, written atomically and read without unpickling anything.

A run directory holds the model that `--model RUN` loads (config.yaml, model.safetensors,
tokenizer.model unless both parts bring their own tokenizers, and a folder per pretrained
part) and, under state/, what resuming needs: one safetensors file whose
tensors are model, optimiser and RNG state and whose metadata is the trainer's JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from textwae.errors import RunDirectoryError
from textwae.runs.lock import LOCK_FILE

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.yaml", "model.safetensors", "tokenizer.model"
LM_TOKENIZER_FILE = "lm_pieces.json"  # tokenizer.type=lm: the LM's pieces the run uses
NAMES_FILE = "names.yaml"  # data.mask_names: the character names of the training split
METRICS_FILE = "metrics.jsonl"
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE)  # and the tokenizers the config names
STATE_FILE = Path("state") / "trainer.safetensors"
LATENT_MAP_FILE, CURVES_FILE = "latent_map.png", "training_curves.png"
# the files at the top of a run directory
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, LM_TOKENIZER_FILE, NAMES_FILE,
             METRICS_FILE, LATENT_MAP_FILE, CURVES_FILE, LOCK_FILE)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place.

    A process killed at any moment leaves either the old file or the new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the run from other users
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_folder(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary folder beside `path` and put it in place, unless
    `path` already holds the same files, which it then keeps untouched.

    A run's folders are written again at every save with the same content, so a kill during a
    save never touches them; a changed folder is swapped in by two renames.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(tmp)
        if path.is_dir() and _same_files(tmp, path):
            return
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _same_files(first: Path, second: Path) -> bool:
    names = sorted(p.name for p in first.iterdir())
    return names == sorted(p.name for p in second.iterdir()) and all(
        (first / name).read_bytes() == (second / name).read_bytes() for name in names)


def run_directory_of(path: Path) -> Path | None:
    """The run directory `path` lies in (or is), if any: the closest folder holding both
    config.yaml and model.safetensors."""
    for folder in [path, *path.parents]:
        if all((folder / name).is_file() for name in MODEL_FILES):
            return folder
    return None


def check_output_path(path: str | Path) -> Path:
    """A file a command may write its output to: not a folder, and not a file of a run
    directory (its weights, config, tokenizer, state, metrics or plots are never replaced)."""
    path = Path(path)
    if path.is_dir():
        raise RunDirectoryError(f"--out {path} is a folder; name a file to write")
    resolved = path.resolve()
    run_dir = run_directory_of(resolved.parent)
    if run_dir is not None and (resolved.parent != run_dir or resolved.exists()
                                or resolved.name in RUN_FILES):
        raise RunDirectoryError(f"--out {path} is a file of the run directory {run_dir}, whose "
                                "files are never replaced; choose a new name or another folder")
    return path


def check_new_run_directory(run_dir: Path) -> None:
    """A new run goes into a folder that does not exist yet, or an empty one (a lock file
    that a killed run left is no content)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} is a file, not a run directory; choose another --out")
    if run_dir.is_dir() and any(child.name != LOCK_FILE for child in run_dir.iterdir()):
        raise RunDirectoryError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")


@contextlib.contextmanager
def removed_unless_resumable(run_dir: Path, existed: bool) -> Iterator[None]:
    """Remove what a new run wrote into `run_dir` (new or empty, see `check_new_run_directory`;
    `existed`: the folder was there before the run) if it stops, by any exception or signal,
    before its first resumable state is saved: a failed start never blocks the same command
    from running again."""
    try:
        yield
    except BaseException:
        if not (run_dir / STATE_FILE).is_file():
            if not existed:
                shutil.rmtree(run_dir, ignore_errors=True)
            elif run_dir.is_dir():  # the folder was the user's and empty: empty it again
                for child in run_dir.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        raise


def check_model_files(run_dir: str | Path, names: tuple[str, ...] = MODEL_FILES) -> Path:
    """`run_dir` as a Path, if it holds the files `names`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(f"run directory {run_dir} does not exist")
    missing = [name for name in names if not (run_dir / name).exists()]
    if missing:
        raise RunDirectoryError(f"run directory {run_dir} is incomplete: missing "
                                f"{', '.join(missing)}")
    return run_dir


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically; a failed write (a full disk) is the `OSError` it
    is, and the file keeps its last complete version."""
    # clone: tied weights share storage, which safetensors refuses to write twice
    tensors = {name: tensor.detach().cpu().clone() for name, tensor in tensors.items()}

    def write(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as error:
            raise _os_error(error, path) from error

    atomic_write(path, write)


def _os_error(error: SafetensorError, path: str | Path) -> Exception:
    """The `OSError` a safetensors failure reports in its text (`... (os error 28)`), or the
    error itself when it is not one."""
    found = re.search(r"\bos error (\d+)", str(error))
    if found is None:
        return error
    number = int(found.group(1))
    return OSError(number, os.strerror(number), str(path))


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a truncated or foreign file is an error."""
    try:
        with safe_open(str(path), framework="pt") as reader:
            names = reader.keys()
            return {name: reader.get_tensor(name) for name in names}, reader.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise RunDirectoryError(f"{path} is corrupt or unreadable: {error}") from error


def load_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a safetensors file, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as reader:
            return reader.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise RunDirectoryError(f"{path} is corrupt or unreadable: {error}") from error


def load_matching(module: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path | str,
                  shape_hint: Callable[[], str] = lambda: "") -> None:
    """Load a state dict into `module`, explaining a mismatch instead of dumping shapes;
    `shape_hint()` may add how to load a file whose shapes differ."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise RunDirectoryError(f"{source} does not fit the model in its config.yaml: missing "
                                f"{missing[:3]}, unexpected {unexpected[:3]}")
    wrong = [name for name in expected if weights[name].shape != expected[name].shape]
    if wrong:
        raise RunDirectoryError(f"{source}: shapes of {', '.join(wrong[:3])} do not match "
                                f"config.yaml" + shape_hint())
    module.load_state_dict(weights)


def flatten(tree: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """JSON-able copy of a nested state (dicts, lists, numbers) with tensors moved to `tensors`.

    Dicts with non-string keys (an optimiser's parameter ids) become {"__items__": pairs}.
    """
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree
        return {"__tensor__": prefix}
    if isinstance(tree, dict):
        if all(isinstance(key, str) for key in tree):
            return {key: flatten(value, tensors, f"{prefix}.{key}") for key, value in tree.items()}
        return {"__items__": [[key, flatten(value, tensors, f"{prefix}.{key}")]
                              for key, value in tree.items()]}
    if isinstance(tree, list | tuple):
        return [flatten(value, tensors, f"{prefix}.{i}") for i, value in enumerate(tree)]
    return tree


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__items__" in tree:
            return {key: unflatten(value, tensors) for key, value in tree["__items__"]}
        return {key: unflatten(value, tensors) for key, value in tree.items()}
    if isinstance(tree, list):
        return [unflatten(value, tensors) for value in tree]
    return tree


def resumable(path: Path) -> Path:
    """`path`, a training state to resume from, if it exists."""
    if not path.is_file():
        raise RunDirectoryError(f"cannot resume: {path} does not exist")
    return path


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a nested training state as one safetensors file, its structure in the metadata."""
    tensors: dict[str, torch.Tensor] = {}
    structure = flatten(state, tensors, "state")
    save_tensors(path, tensors, metadata={"structure": json.dumps(structure)})


def load_state(path: str | Path) -> dict[str, Any]:
    tensors, metadata = load_tensors(path)
    try:
        return unflatten(json.loads(metadata["structure"]), tensors)
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        raise RunDirectoryError(f"{path} holds no readable training state "
                                f"({type(error).__name__}: {error})") from error
