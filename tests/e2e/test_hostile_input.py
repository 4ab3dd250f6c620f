"""Hostile input (issue 14's classes): each case exits with its status and one line on stderr,
shows no traceback, and leaves every file that existed before byte-identical."""

import errno
import json
import os
import signal

import pytest
import torch

from tests.conftest import TINY_OVERRIDES
from tests.e2e.test_bad_input import copy_of, fails, snapshot
from textwae.cli.main import generate_main, main, train_main
from textwae.config import schema
from textwae.config.loading import load_config
from textwae.generation import levels, operations
from textwae.runs import checkpoint
from textwae.runs.checkpoint import STATE_FILE, load_state
from textwae.training.pipeline import train
from textwae.training.trainer import Trainer

# every test here runs the scripts' entry points or trains, in the repository (in_repo)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("in_repo")]




# -- 3, 4: a failed start never blocks a retry; unchecked values fail before any write ----------

@pytest.mark.parametrize("override, message", [
    ("model.dropout=1.5", "model.dropout must lie in [0, 1)"),
    ("model.embedding_dim=0", "model.embedding_dim must be positive"),
    ("model.num_layers=0", "model.num_layers must be positive"),
    ("train.eval_every=0", "train.eval_every must be positive"),
    ("train.num_threads=0", "train.num_threads must be positive"),
    ("regularizer.scales=[]", "regularizer.scales: give at least one"),
    ("train.device=cuda:3", "train.device: 'cuda:3', but this machine has"),
    ("train.device=tpu", "not a device name"),
])
def test_a_meaningless_value_fails_before_anything_is_written(tmp_path, capfd, corpus_file,
                                                             override, message):
    out = tmp_path / "run"
    err = fails(capfd, train_main, "--out", out, f"data.train={corpus_file}", *TINY_OVERRIDES,
                override)
    assert message in err and not out.exists()
    if torch.cuda.device_count() == 0 or "cuda" not in override:
        # the same command, fixed, then runs in the same --out
        train_main(["--out", str(out), f"data.train={corpus_file}", *TINY_OVERRIDES])
        assert (out / STATE_FILE).is_file()


def test_bf16_on_a_cpu_without_bf16_arithmetic_fails_before_anything_is_written(
        tmp_path, capfd, corpus_file, monkeypatch):
    monkeypatch.setattr(schema, "cpu_has_native_bf16", lambda: False)
    out = tmp_path / "run"
    err = fails(capfd, train_main, "--out", out, f"data.train={corpus_file}", *TINY_OVERRIDES,
                "train.precision=bf16")
    assert "train.precision=bf16: this CPU has no native bf16 arithmetic" in err
    assert not out.exists()


def test_a_cache_dir_that_is_a_file_is_refused(tmp_path, capfd, corpus_file):
    out = tmp_path / "run"
    err = fails(capfd, train_main, "--out", out, f"data.train={corpus_file}", *TINY_OVERRIDES,
                f"data.cache_dir={corpus_file}")
    assert "data.cache_dir" in err and "not a folder" in err and not out.exists()
    assert corpus_file.read_text(encoding="utf-8").count("\n") == 120


def test_a_run_that_fails_before_its_first_state_leaves_nothing(tmp_path, capfd, corpus_file,
                                                                monkeypatch):
    out = tmp_path / "run"
    out.mkdir()  # the user's own empty folder: kept, and emptied again

    def broken_fit(self):
        raise RuntimeError("something broke at the first step")

    monkeypatch.setattr(Trainer, "fit", broken_fit)
    with pytest.raises(SystemExit) as exit_:
        train_main(["--out", str(out), f"data.train={corpus_file}", *TINY_OVERRIDES])
    assert exit_.value.code == 1
    err = capfd.readouterr().err
    assert "internal error: RuntimeError: something broke" in err and "Traceback" not in err
    assert out.is_dir() and list(out.iterdir()) == []
    monkeypatch.undo()
    train_main(["--out", str(out), f"data.train={corpus_file}", *TINY_OVERRIDES])  # a retry runs
    assert (out / STATE_FILE).is_file()


def test_resume_overrides_are_checked_before_the_run_is_touched(trained_run, tmp_path, capfd):
    run_dir = copy_of(trained_run, tmp_path)
    before = snapshot(run_dir)
    fails(capfd, train_main, "--out", run_dir, "--resume", "model.dropout=-1")
    assert snapshot(run_dir) == before


# -- 4: outputs never land on a run's own files ----------------------------------------------

@pytest.mark.parametrize("target", ["model.safetensors", "config.yaml", ".", "state/new.json"])
def test_evaluate_out_never_writes_over_the_run(trained_run, tmp_path, capfd, target):
    run_dir = copy_of(trained_run, tmp_path)
    before = snapshot(run_dir)
    err = fails(capfd, main, "evaluate", "--model", run_dir, "--n-samples", "2",
                "--out", run_dir / target)
    assert "--out" in err
    assert snapshot(run_dir) == before


def test_evaluate_out_as_a_new_file_beside_the_run_works(trained_run, tmp_path, capsys):
    run_dir = copy_of(trained_run, tmp_path)
    main(["evaluate", "--model", str(run_dir), "--n-samples", "2", "--no-lm-judge", "--out",
          str(run_dir / "evaluation.json")])
    assert "bleu" in json.loads((run_dir / "evaluation.json").read_text())
    assert json.loads(capsys.readouterr().out) == json.loads((run_dir / "evaluation.json")
                                                            .read_text())


# -- 5: environment failures are one line ----------------------------------------------------

def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last_state(
        tmp_path, capfd, corpus_file, monkeypatch):
    out = tmp_path / "run"
    overrides = [f"data.train={corpus_file}", *TINY_OVERRIDES, "train.max_steps=6",
                 "train.checkpoint_every=2", "train.eval_every=100"]
    saved = checkpoint.save_state

    def full_after_first(path, state):
        if state["progress"]["step"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        saved(path, state)

    monkeypatch.setattr(checkpoint, "save_state", full_after_first)
    err = fails(capfd, train_main, "--out", out, *overrides)
    assert "No space left on device" in err and err.count("\n") == 1
    assert load_state(out / STATE_FILE)["progress"]["step"] == 2  # the last good state
    assert not [p for p in out.rglob("*.tmp")]


def test_unreadable_paths_are_one_line(trained_run, tmp_path, capfd):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_bytes(b"model:\n  dropout: \xff\n")
    assert "Too many levels of symbolic links" in fails(
        capfd, train_main, "--config", loop, "--out", tmp_path / "x")
    assert "not UTF-8" in fails(capfd, train_main, "--config", bad_yaml, "--out", tmp_path / "x")
    assert "Is a directory" in fails(capfd, generate_main, "reconstruct", "--model", trained_run,
                                     "--input", tmp_path)
    assert "does not exist" in fails(capfd, generate_main, "sample", "--model", loop)
    assert not (tmp_path / "x").exists()


def test_a_crafted_resume_state_is_refused_and_kept(trained_run, tmp_path, capfd):
    run_dir = copy_of(trained_run, tmp_path)
    state = load_state(run_dir / STATE_FILE)
    state["progress"] = {"step": "many"}  # wrong type: Progress cannot take it
    checkpoint.save_state(run_dir / STATE_FILE, state)
    before = snapshot(run_dir)
    err = fails(capfd, train_main, "--out", run_dir, "--resume")
    assert "cannot resume" in err
    assert snapshot(run_dir) == before


# -- 6: no silent garbage; generation streams ------------------------------------------------

@pytest.mark.parametrize("row, found", [
    ({"text": 5}, "int 5"), ({"text": {"a": 1}}, "dict"), ({"text": ["a"]}, "list"),
    ({"text": None}, "no value"), ({"body": "x"}, "no value"),
])
def test_a_text_that_is_not_a_string_names_file_and_line(tmp_path, capfd, row, found):
    data, out = tmp_path / "rows.jsonl", tmp_path / "run"
    data.write_text(json.dumps({"text": "anna went home ."}) + "\n" + json.dumps(row) + "\n")
    err = fails(capfd, train_main, "--out", out, f"data.train={data}", *TINY_OVERRIDES)
    assert f"{data}: line 2: text column text holds {found}" in err
    assert not out.exists()


def test_sample_prints_its_first_chunk_before_decoding_the_last(trained_run, capsys,
                                                                monkeypatch):
    events = []
    decode = levels.decode_texts

    def recording(model, z, decoding, generator=None):
        events.append(("decode", len(capsys.readouterr().out.splitlines())))
        return decode(model, z, decoding, generator)

    monkeypatch.setattr(levels, "decode_texts", recording)
    n = 2 * operations.CHUNK + 5
    generate_main(["sample", "--model", str(trained_run), "--n", str(n), "--max-length", "3",
                   "--redraws", "0"])  # one decoding a chunk
    assert len(events) == 3
    assert events[-1][1] > 0  # lines were printed before the last chunk was decoded


# -- 7: Ctrl-C -------------------------------------------------------------------------------

def test_ctrl_c_saves_a_state_that_resumes_exactly(tmp_path, capfd, corpus_file, monkeypatch):
    overrides = [f"data.train={corpus_file}", *TINY_OVERRIDES, "train.max_steps=6",
                 "train.checkpoint_every=100", "train.eval_every=100"]
    config = load_config(overrides=overrides)
    train(config, tmp_path / "straight")
    step = Trainer.train_step

    def interrupted_at_3(self, batches):
        output = step(self, batches)
        if self.progress.step == 2:  # during the third step
            os.kill(os.getpid(), signal.SIGINT)
        return output

    monkeypatch.setattr(Trainer, "train_step", interrupted_at_3)
    with pytest.raises(SystemExit) as exit_:
        train_main(["--out", str(tmp_path / "resumed"), *overrides])
    assert exit_.value.code == 130
    err = capfd.readouterr().err
    assert "interrupted after step 3" in err and "--resume" in err and "Traceback" not in err
    monkeypatch.undo()
    train_main(["--out", str(tmp_path / "resumed"), "--resume"])
    straight = load_state(tmp_path / "straight" / STATE_FILE)
    resumed = load_state(tmp_path / "resumed" / STATE_FILE)
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name


def test_ctrl_c_while_generating_stops_with_one_line(trained_run, capfd, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(levels, "decode_texts", interrupted)
    with pytest.raises(SystemExit) as exit_:
        generate_main(["sample", "--model", str(trained_run), "--n", "3"])
    assert exit_.value.code == 130
    assert capfd.readouterr().err == "error: interrupted\n"


@pytest.mark.parametrize("args, message", [
    (["sample", "--n", "many"], "argument --n: invalid int value: 'many'"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["sample", "--device", "cuda:5"], "--device: 'cuda:5', but this machine has"),
])
def test_bad_arguments_are_one_line_too(trained_run, capfd, args, message):
    err = fails(capfd, generate_main, *args[:1], "--model", trained_run, *args[1:])
    assert message in err and err.count("\n") == 1
