"""Exact resume: a run killed at any moment continues to the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO, TINY_OVERRIDES
from textwae.config.loading import load_config
from textwae.errors import RunDirectoryError
from textwae.runs.checkpoint import (
    STATE_FILE,
    atomic_write,
    atomic_write_folder,
    flatten,
    load_state,
)
from textwae.training.pipeline import train
from textwae.training.trainer import Trainer

pytestmark = pytest.mark.slow  # every test here runs scripts or trains

STEPS = 30  # long enough to be caught mid-run, short enough to stay cheap
KILL_AT = 8  # SIGKILL once the saved state has reached this step
# one state per step; evaluation only at the end, so the best model does not move meanwhile
RESUME_OVERRIDES = [*TINY_OVERRIDES, f"train.max_steps={STEPS}", f"train.eval_every={STEPS}",
                    "train.checkpoint_every=1", "train.num_threads=1"]


def saved_step(run) -> int | None:
    """The step of the run's saved state; None before the first one. Renames are atomic, so
    an open file is always whole: the old state or the new one."""
    try:
        return load_state(run / STATE_FILE)["progress"]["step"]
    except (FileNotFoundError, RunDirectoryError):
        return None


def train_script(*args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *map(str, args)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_same_training_state(resumed: dict, uninterrupted: dict) -> None:
    """Model, optimisers, RNG and data position equal (tensors within 1e-6); not the clock."""
    got, expected = {}, {}
    structures = [flatten(resumed, got, "state"), flatten(uninterrupted, expected, "state")]
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-6,
                                   msg=lambda message, name=name: f"{name}: {message}")
    progress, whole = (structure.pop("progress") for structure in structures)
    assert structures[0] == structures[1]  # optimiser settings, callbacks' other state
    assert progress.pop("best_valid") == pytest.approx(whole.pop("best_valid"), abs=1e-6)
    assert progress | {"elapsed": 0} == whole | {"elapsed": 0}


def test_sigkill_then_resume_gives_the_weights_of_an_uninterrupted_run(corpus, tmp_path):
    overrides = [f"data.train={corpus}", *RESUME_OVERRIDES]
    killed = tmp_path / "killed"
    process = train_script("--out", killed, *overrides)
    deadline = time.monotonic() + 120
    while (saved_step(killed) or 0) < KILL_AT and process.poll() is None:
        assert time.monotonic() < deadline, "training never reached the step to kill at"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the run ended before the kill:\n{stderr}"
    stopped_at = saved_step(killed)
    assert KILL_AT <= stopped_at < STEPS

    process = train_script("--out", killed, "--resume")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr

    whole = tmp_path / "whole"
    train(load_config(overrides=overrides), whole)  # in this process: threads are 1 here too
    assert_same_training_state(load_state(killed / STATE_FILE), load_state(whole / STATE_FILE))


class Crash(Exception):
    """Stands in for a crash in the middle of training."""


def crash_and_resume(config, tmp_path, monkeypatch, at_step: int) -> tuple[dict, dict]:
    """Train `config` whole, and again with a crash at step `at_step` then a resume; the
    final training states of both (resumed, whole)."""
    train(config, tmp_path / "whole")
    step = Trainer.train_step

    def crash(self, batch):
        if self.progress.step == at_step:
            raise Crash
        return step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", crash)
    with pytest.raises(Crash):
        train(config, tmp_path / "crashed")
    monkeypatch.undo()
    assert load_state(tmp_path / "crashed" / STATE_FILE)["progress"]["step"] == at_step
    train(load_config(tmp_path / "crashed" / "config.yaml"), tmp_path / "crashed", resume=True)
    return (load_state(tmp_path / "crashed" / STATE_FILE),
            load_state(tmp_path / "whole" / STATE_FILE))


def test_gan_resume_restores_the_discriminator_optimiser(corpus, tmp_path, monkeypatch):
    config = load_config(overrides=[f"data.train={corpus}", *RESUME_OVERRIDES,
                                    "model.regularizer=gan", "regularizer.adversary_hidden=8",
                                    "train.max_steps=10", "train.eval_every=10"])
    resumed, whole = crash_and_resume(config, tmp_path, monkeypatch, at_step=6)
    assert resumed["callbacks"][0]["optimizer"]["state"]  # the discriminator's AdamW moments
    assert_same_training_state(resumed, whole)


def test_lora_on_smollm2_resumes_exactly(corpus, tmp_path, monkeypatch, smollm2):
    """The adapters, the injection and their AdamW moments come back; the frozen base is read
    from its source again."""
    config = load_config(overrides=[f"data.train={corpus}", *RESUME_OVERRIDES,
                                    "model.decoder=transformer", "model.decoder_training=lora",
                                    f"model.decoder_pretrained={smollm2}", "data.max_length=16",
                                    "train.batch_size=4", "train.max_steps=2",
                                    "train.eval_every=2"])
    resumed, whole = crash_and_resume(config, tmp_path, monkeypatch, at_step=1)
    assert any("lora_A" in name for name in resumed["model"])
    assert_same_training_state(resumed, whole)


def test_resume_forgets_metrics_written_after_the_last_saved_state(corpus, tmp_path):
    run = tmp_path / "run"
    overrides = [f"data.train={corpus}", *RESUME_OVERRIDES, "train.eval_every=2",
                 "train.log_every=1"]
    train(load_config(overrides=[*overrides, "train.max_steps=4"]), run)
    metrics = run / "metrics.jsonl"
    with open(metrics, "a", encoding="utf-8") as out:  # a kill after step 5 was logged, mid-line
        out.write(json.dumps({"step": 5, "split": "train", "loss": 1.0}) + '\n{"step": 6, "sp')
    train(load_config(run / "config.yaml", overrides=["train.max_steps=6"]), run, resume=True)
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if r["split"] == "valid"] == [2, 4, 6]
    assert all(r["loss"] != 1.0 for r in records)  # step 5 is the resumed run's


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "state" / "trainer.safetensors"
    atomic_write(path, lambda tmp: tmp.write_bytes(b"old state"))

    def half_then_fail(tmp):
        tmp.write_bytes(b"new st")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old state"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    atomic_write(path, lambda tmp: tmp.write_bytes(b"new state"))
    assert path.read_bytes() == b"new state"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_atomic_write_folder_keeps_an_equal_folder_and_swaps_a_changed_one(tmp_path):
    folder = tmp_path / "decoder_pretrained"
    atomic_write_folder(folder, lambda tmp: (tmp / "config.json").write_text("{}"))
    inode = (folder / "config.json").stat().st_ino
    atomic_write_folder(folder, lambda tmp: (tmp / "config.json").write_text("{}"))
    assert (folder / "config.json").stat().st_ino == inode  # same content: left untouched

    def half_then_fail(tmp):
        (tmp / "config.json").write_text('{"n_embd"')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_folder(folder, half_then_fail)
    assert (folder / "config.json").read_text() == "{}"
    atomic_write_folder(folder, lambda tmp: (tmp / "config.json").write_text('{"n": 1}'))
    assert (folder / "config.json").read_text() == '{"n": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder_pretrained"]  # no leftovers
