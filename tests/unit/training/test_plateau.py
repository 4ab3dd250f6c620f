"""The memorisation notice: once when validation stalls while training improves, never when
validation improves."""

from __future__ import annotations

import json
import random
import string
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import TINY
from textwae.config.loading import load_config
from textwae.training.callbacks import StepRecord, ValidationRecord
from textwae.training.pipeline import train
from textwae.training.plateau import PlateauNotice


def feed(notice: PlateauNotice, history: list[tuple[float, float]], steps: int = 5) -> None:
    """Per validation (training reconstruction of its steps, held-out reconstruction)."""
    step = 0
    for train_recon, valid_recon in history:
        for _ in range(steps):
            notice.on_step_end(StepRecord(step, SimpleNamespace(recon=torch.tensor(train_recon))))
            step += 1
        notice.on_validation(ValidationRecord(step, {"recon": valid_recon, "loss": valid_recon}))


FALLING = [5.0, 4.5, 4.0, 3.5, 3.0, 2.5, 2.0]


def test_no_notice_while_validation_improves(capsys):
    feed(PlateauNotice(), list(zip(FALLING, [6.0, 5.5, 5.2, 5.0, 4.9, 4.8, 4.7], strict=True)))
    assert capsys.readouterr().err == ""


def test_no_notice_when_both_stall(capsys):
    feed(PlateauNotice(), [(4.0, 5.0)] * 7)
    assert capsys.readouterr().err == ""


def test_one_notice_when_validation_stalls_while_training_falls(capsys):
    feed(PlateauNotice(), list(zip(FALLING, [6.0, 5.5, 5.6, 5.7, 5.9, 6.0, 6.2], strict=True)))
    err = capsys.readouterr().err
    assert err.count("notice:") == 1 and err.count("\n") == 1
    assert "at step 20" in err and "step 10's (5.500)" in err and "memorising" in err
    for option in ("more data", "pretrained", "fewer steps"):
        assert option in err


def test_the_notice_state_survives_a_resume(capsys):
    history = list(zip(FALLING, [6.0, 5.5, 5.6, 5.7, 5.9, 6.0, 6.2], strict=True))
    first = PlateauNotice()
    feed(first, history[:3])
    first.on_step_end(StepRecord(0, SimpleNamespace(recon=torch.tensor(3.5))))
    resumed = PlateauNotice()
    resumed.load_state_dict(first.state_dict())
    assert resumed.state_dict().keys() == first.state_dict().keys()
    assert resumed.best == first.best and len(resumed.recent) == 1
    feed(resumed, history[3:])
    assert capsys.readouterr().err.count("notice:") == 1
    told = PlateauNotice()
    told.load_state_dict(resumed.state_dict())
    feed(told, history)  # said once per run, also across a resume
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError):
        told.load_state_dict({"best": torch.zeros(0)})


@pytest.mark.slow
def test_a_run_that_can_only_memorise_says_so_once(tmp_path, capsys):
    """Random words: nothing learnt from the training units carries over to held-out ones."""
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=5)) for _ in range(200)]
    for name, n in (("train", 64), ("valid", 32)):
        (tmp_path / f"{name}.txt").write_text(
            "\n".join(" ".join(rng.choices(words, k=8)) for _ in range(n)) + "\n")
    config = load_config(TINY, overrides=[
        f"data.train={tmp_path / 'train.txt'}", f"data.valid={tmp_path / 'valid.txt'}",
        "train.max_steps=160", "train.eval_every=20", "train.checkpoint_every=1000",
        "tokenizer.vocab_size=auto", "train.lr=0.01", "model.hidden_size=64",
        "model.word_dropout=0", "model.z_noise=0"])
    train(config, tmp_path / "run")
    assert capsys.readouterr().err.count("notice:") == 1
    records = [json.loads(line) for line in
               (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    valid = [record["recon"] for record in records if record["split"] == "valid"]
    assert min(valid) < valid[-1]  # the held-out loss did rise again: the notice was due
