"""A run resolves its `auto` settings once, says what it chose, and saves them resolved."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import TINY
from textwae.config.loading import load_config, load_run_config
from textwae.runs.checkpoint import STATE_FILE, load_state
from textwae.text.auto_settings import VOCAB_SIZES
from textwae.training.pipeline import train

AUTO_KEYS = ["tokenizer.vocab_size", "prior.components", "train.batch_size", "train.lr"]


@pytest.mark.slow
def test_auto_values_are_chosen_once_saved_and_kept_on_resume(corpus, tmp_path, capsys):
    config = load_config(TINY, overrides=[
        f"data.train={corpus}", "data.label_field=label", "prior.free_modes=1",
        "data.max_length=40", *(f"{key}=auto" for key in AUTO_KEYS)])
    run = tmp_path / "run"
    train(config, run)
    told = [line for line in capsys.readouterr().err.splitlines() if line.startswith("auto:")]
    assert sorted(line.split("=")[0] for line in told) == sorted(f"auto: {key}"
                                                                 for key in AUTO_KEYS)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["tokenizer"]["vocab_size"] in VOCAB_SIZES
    assert saved["prior"]["components"] == 4  # the toy corpus's 3 labels and 1 free mode
    assert saved["prior"]["labels"] == ["0", "1", "2"]
    assert (saved["train"]["batch_size"], saved["train"]["lr"]) == (64, 0.002)
    assert saved["data"]["max_length"] == 40  # an explicit value wins
    assert config.train.lr == "auto"  # the caller's config is not changed

    longer = load_run_config(run / "config.yaml", overrides=["train.max_steps=6"])
    train(longer, run, resume=True)
    assert "auto:" not in capsys.readouterr().err
    saved["train"]["max_steps"] = 6  # the one key changed on resume
    assert yaml.safe_load((run / "config.yaml").read_text()) == saved
    assert load_state(run / STATE_FILE)["progress"]["step"] == 6


@pytest.mark.slow
def test_max_length_follows_the_corpus(corpus, tmp_path, capsys):
    config = load_config(TINY, overrides=[f"data.train={corpus}", "data.max_length=auto"])
    train(config, tmp_path / "run")
    assert "auto: data.max_length=16" in capsys.readouterr().err  # short toy sentences
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"][
        "max_length"] == 16
