"""Hostile runs (issue 36): concurrent writers, signals, a full disk and odd resumes. Each ends
with its status and one line on stderr, no traceback, and a run directory that is either
unchanged or resumable, never blocking the same command from running again."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors import SafetensorError

from tests.conftest import REPO, TINY_OVERRIDES, toy_stories, write_labelled
from tests.e2e.test_bad_input import fails, snapshot
from tests.e2e.test_distributed import free_port
from textwae.cli.common import describe_failure
from textwae.cli.main import train_main
from textwae.distributed import PeerLost, lost_peer
from textwae.models.autoencoder import TextWAE
from textwae.models.story import STORY_DIR
from textwae.runs import checkpoint
from textwae.runs.checkpoint import STATE_FILE, load_state
from textwae.runs.lock import LOCK_FILE, run_lock
from textwae.training.trainer import Trainer

# every test here trains or runs the scripts, in the repository (in_repo)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("in_repo")]

STEPS = ["train.max_steps=6", "train.checkpoint_every=2", "train.eval_every=100",
         "train.log_every=1"]
STORY = ["data.label_field=label", "story.hidden_size=16", "story.latent_dim=3",
         "story.batch_size=8", "story.max_steps=4", "story.eval_every=2", "story.max_sentences=3"]




def train_args(out, corpus, *extra) -> list[str]:
    return [str(arg) for arg in ("--out", out, f"data.train={corpus}", *TINY_OVERRIDES, *extra)]


def saved_step(run_dir) -> int:
    return load_state(run_dir / STATE_FILE)["progress"]["step"]


def signal_at_step(monkeypatch, number: int, at: int) -> None:
    """Send this process `number` during training step `at` (1-based)."""
    step = Trainer.train_step

    def signalled(self, batches):
        output = step(self, batches)
        if self.progress.step == at - 1:
            os.kill(os.getpid(), number)
        return output

    monkeypatch.setattr(Trainer, "train_step", signalled)


# -- 3: one writer per run directory ----------------------------------------------------------

def test_a_second_writer_is_refused_and_a_killed_ones_lock_blocks_nothing(tmp_path, capfd,
                                                                        corpus_file):
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"),
         *train_args(out, corpus_file, "train.max_steps=100000", "train.max_time=120",
                     "train.checkpoint_every=1", "train.num_threads=1")],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / STATE_FILE).is_file():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        # other settings into the same --out, and a resume of it, while the first one trains
        err = fails(capfd, train_main, *train_args(out, corpus_file, "model.hidden_size=32"))
        assert f"{out} is in use: another training process" in err and err.count("\n") == 1
        err = fails(capfd, train_main, "--out", out, "--resume")
        assert "is in use" in err
        assert first.poll() is None  # the first run went on undisturbed
    finally:
        first.kill()
        first.communicate(timeout=60)
    assert (out / LOCK_FILE).is_file()  # what the killed run left: the kernel freed its lock
    TextWAE.from_pretrained(out)
    train_main(["--out", str(out), "--resume", "train.max_time=null",
                f"train.max_steps={saved_step(out) + 1}"])
    assert not (out / LOCK_FILE).exists()


def test_an_unlocked_lock_file_does_not_make_a_folder_hold_a_run(tmp_path, corpus_file, capfd):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text("")  # left by a run killed before it wrote anything
    train_main(train_args(out, corpus_file))
    assert saved_step(out) == 3
    with run_lock(out):  # held by another process: this one's own open file is another one
        err = fails(capfd, train_main, "--out", out, "--resume", "train.max_steps=5")
    assert "is in use" in err and saved_step(out) == 3


# -- 4: SIGTERM and SIGHUP as Ctrl-C -----------------------------------------------------------

@pytest.mark.parametrize("number, status, reason", [
    (signal.SIGTERM, 143, "stopped by SIGTERM"), (signal.SIGHUP, 129, "stopped by SIGHUP")])
def test_a_signal_mid_run_saves_a_state_that_resumes_exactly(tmp_path, capfd, corpus_file,
                                                            monkeypatch, number, status, reason):
    train_main(train_args(tmp_path / "straight", corpus_file, *STEPS))
    handler = signal.getsignal(number)
    signal_at_step(monkeypatch, number, at=3)
    with pytest.raises(SystemExit) as exit_:
        train_main(train_args(tmp_path / "stopped", corpus_file, *STEPS))
    assert exit_.value.code == status
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and f"error: {reason} after step 3;" in err and "--resume" in err
    assert saved_step(tmp_path / "stopped") == 3
    monkeypatch.undo()
    assert signal.getsignal(number) == handler  # put back when training ended
    train_main(["--out", str(tmp_path / "stopped"), "--resume"])
    straight = load_state(tmp_path / "straight" / STATE_FILE)
    resumed = load_state(tmp_path / "stopped" / STATE_FILE)
    assert resumed["progress"]["step"] == 6
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name


@pytest.mark.parametrize("existed", [False, True], ids=["new-folder", "empty-folder"])
def test_sigterm_before_the_first_state_removes_what_the_run_wrote(tmp_path, capfd, corpus_file,
                                                                   monkeypatch, existed):
    out = tmp_path / "run"
    if existed:
        out.mkdir()
    build = TextWAE.build
    written = []

    def terminated(*args, **kwargs):  # tokenizer.model is written, no state yet
        written.extend(path.name for path in out.iterdir())
        os.kill(os.getpid(), signal.SIGTERM)
        return build(*args, **kwargs)

    monkeypatch.setattr(TextWAE, "build", staticmethod(terminated))
    with pytest.raises(SystemExit) as exit_:
        train_main(train_args(out, corpus_file))
    assert exit_.value.code == 143
    assert capfd.readouterr().err == "error: stopped by SIGTERM\n"
    assert checkpoint.TOKENIZER_FILE in written
    assert out.is_dir() == existed and (not existed or not any(out.iterdir()))
    monkeypatch.undo()
    train_main(train_args(out, corpus_file))  # the same command runs again
    assert saved_step(out) == 3


# -- 7: a full disk ---------------------------------------------------------------------------

def test_a_full_disk_while_saving_is_one_line_and_keeps_the_last_state(tmp_path, capfd,
                                                                        corpus_file, monkeypatch):
    out = tmp_path / "run"
    save, disk = checkpoint.save_file, {"full": False}

    def save_file(tensors, path, metadata=None):
        if disk["full"]:
            raise SafetensorError("Error while serializing: I/O error: No space left on device "
                                  f"(os error 28) at path \"{path}\"")
        save(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    step = Trainer.train_step

    def filling(self, batches):
        disk["full"] = self.progress.step >= 2  # after the state of step 2
        return step(self, batches)

    monkeypatch.setattr(Trainer, "train_step", filling)
    err = fails(capfd, train_main, *train_args(out, corpus_file, *STEPS))
    assert err.count("\n") == 1 and "No space left on device; free some space" in err
    assert f"error: {out}" in err  # the file it was writing
    assert saved_step(out) == 2
    assert not [path for path in out.rglob("*") if path.name.endswith(".tmp")]
    monkeypatch.undo()
    train_main(["--out", str(out), "--resume"])  # space freed: the run goes on
    assert saved_step(out) == 6


# -- 10: resume -------------------------------------------------------------------------------

@pytest.fixture
def story_run(tmp_path):
    corpus = write_labelled(tmp_path / "stories.jsonl", toy_stories())
    out = tmp_path / "run"
    train_main(["--config", str(REPO / "configs" / "stories.yaml"),
                *train_args(out, corpus, *STORY)])
    assert saved_step(out / STORY_DIR) == 4
    return out


def test_a_raised_story_cap_extends_the_finished_story_stage(story_run, capfd):
    sentences = load_state(story_run / STATE_FILE)
    train_main(["--out", str(story_run), "--resume", "story.max_steps=6"])
    assert json.loads(capfd.readouterr().out)["run"] == str(story_run)
    assert saved_step(story_run / STORY_DIR) == 6
    for name, tensor in sentences["model"].items():  # the sentence stage was left alone
        assert torch.equal(tensor, load_state(story_run / STATE_FILE)["model"][name]), name
    assert TextWAE.from_pretrained(story_run).config.story.max_steps == 6  # kept for next time
    before = snapshot(story_run)
    err = fails(capfd, train_main, "--out", story_run, "--resume")  # finished: nothing to do
    assert "nothing to resume: the run has trained its story.max_steps=6 steps" in err
    assert snapshot(story_run) == before


def test_a_raised_sentence_cap_extends_it_and_trains_the_story_stage_again(story_run, capfd):
    train_main(["--out", str(story_run), "--resume", "train.max_steps=5"])
    assert "extends the sentence stage" in capfd.readouterr().err
    assert saved_step(story_run) == 5 and saved_step(story_run / STORY_DIR) == 4
    assert TextWAE.from_pretrained(story_run).config.train.max_steps == 5


@pytest.mark.parametrize("override, message", [
    ("tokenizer.vocab_size=300",
     "cannot change tokenizer.vocab_size (120 -> 300): tokenizer.model was trained with it"),
    ("model.hidden_size=48",
     "cannot change model.hidden_size (24 -> 48): the saved weights were built with it"),
    ("story.latent_dim=5", "cannot change story.latent_dim (3 -> 5)"),
    ("story.enabled=false", "cannot change story.enabled (True -> False)"),
])
def test_a_resume_override_that_cannot_apply_is_refused(story_run, capfd, override, message):
    before = snapshot(story_run)
    err = fails(capfd, train_main, "--out", story_run, "--resume", override)
    assert message in err and "train a new run with it into another --out" in err
    assert "encoder_hidden_size" not in err and err.count("\n") == 1
    assert snapshot(story_run) == before


def ranks_losing_a_peer(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    if rank == 1:
        os._exit(3)  # a worker that dies
    try:
        dist.barrier()
    except RuntimeError as error:
        status, message = describe_failure(PeerLost("process 0 stops"))
        with open(f"{out}/rank0.json", "w", encoding="utf-8") as report:
            json.dump({"lost": lost_peer(error), "status": status, "message": message}, report)


def test_a_worker_that_dies_is_recognised_by_the_others(tmp_path):
    ranks = mp.spawn(ranks_losing_a_peer, args=(free_port(), str(tmp_path)), nprocs=2,
                     join=False)
    for process in ranks.processes:  # all of them: joining stops the others at a failure
        process.join(120)
    assert [process.exitcode for process in ranks.processes] == [0, 3]
    report = json.loads((tmp_path / "rank0.json").read_text())
    assert report == {"lost": True, "status": 1, "message": "process 0 stops"}
    assert not lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
