"""DDP on this machine's CPU: two gloo processes."""

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from tests.conftest import REPO, TINY, TINY_OVERRIDES, toy_stories, toy_texts, write_labelled
from textwae.config.loading import load_config
from textwae.config.schema import PriorConfig
from textwae.distributed import gather_with_grad
from textwae.models.autoencoder import TextWAE
from textwae.models.story import STORY_DIR, StoryRun
from textwae.objectives.divergences import LatentAdversary, mmd
from textwae.objectives.priors import MixtureOfGaussians
from textwae.objectives.regularizers import AdversaryUpdate
from textwae.runs.checkpoint import STATE_FILE, load_state
from textwae.training.pipeline import train
from textwae.training.trainer import Trainer

pytestmark = pytest.mark.slow  # every test here runs scripts or trains

WORLD = 2
SIZES = [5, 3]  # codes per rank: the last batch of an epoch may be short


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def process_group(rank: int, port: int) -> Iterator[None]:
    """A gloo group of WORLD processes; no rank leaves it while another still talks (the
    barrier), as train.py's own ending does, or an early rank's exit can abort its peer."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def codes_and_prior() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(8, 3, generator=generator) + 0.5,
            torch.randn(8, 3, generator=generator))


def mmd_on_rank(rank: int, port: int, out: str) -> None:
    with process_group(rank, port):
        codes, prior = codes_and_prior()
        local = codes.split(SIZES)[rank].clone().requires_grad_()  # ranks hold unequal rows
        value = mmd(gather_with_grad(local), prior, base=6.0)
        value.backward()
        save_file({"value": value.detach()[None], "grad": local.grad}, f"{out}/rank{rank}.st")


def test_gathered_mmd_sees_the_global_batch_and_its_gradient(tmp_path):
    mp.spawn(mmd_on_rank, args=(free_port(), str(tmp_path)), nprocs=WORLD)
    codes, prior = codes_and_prior()
    codes.requires_grad_()
    expected = mmd(codes, prior, base=6.0)
    expected.backward()
    for rank in range(WORLD):
        result = load_file(tmp_path / f"rank{rank}.st")
        torch.testing.assert_close(result["value"][0], expected.detach())
        # every rank backpropagates the same value: the gathered gradient is WORLD times the
        # global one, which DDP's averaging over WORLD ranks divides back
        torch.testing.assert_close(result["grad"] / WORLD, codes.grad.split(SIZES)[rank])


def adversary_step_on_rank(rank: int, port: int, out: str) -> None:
    with process_group(rank, port):
        prior_model = MixtureOfGaussians(PriorConfig(components=2), 3)
        torch.manual_seed(0)  # the same discriminator on both ranks, as training starts it
        update = AdversaryUpdate(LatentAdversary(3, 8, 1), prior_model, lr=0.1)
        codes, prior = codes_and_prior()
        update.step(codes.split(SIZES)[rank], prior[: SIZES[rank]])  # each rank its own codes
        save_file(dict(update.adversary.state_dict()), f"{out}/rank{rank}.st")


def test_the_discriminator_stays_the_same_on_every_rank(tmp_path):
    mp.spawn(adversary_step_on_rank, args=(free_port(), str(tmp_path)), nprocs=WORLD)
    first, second = (load_file(tmp_path / f"rank{rank}.st") for rank in range(WORLD))
    torch.manual_seed(0)
    initial = LatentAdversary(3, 8, 1).state_dict()
    assert any(not torch.equal(first[name], initial[name]) for name in initial)  # it learned
    for name, tensor in first.items():
        torch.testing.assert_close(second[name], tensor, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("source", [
    [], ["data.streaming=true", "data.shuffle_buffer=50"],
    # an adaptive softmax's rare cluster has no target in most batches: its weights then get
    # no gradient on that rank, which DDP must expect
    ["model.output_cutoffs=[100]"]],
    ids=["in-memory", "streamed", "adaptive-softmax"])
def test_torchrun_trains_with_two_gloo_processes(tmp_path, source):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(toy_texts(200)) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={WORLD}", str(REPO / "train.py"), "--out", str(run),
               f"data.train={corpus}", *source, *TINY_OVERRIDES, "train.max_steps=4",
               "train.eval_every=2", "train.log_every=1", "train.checkpoint_every=2"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) == 1  # rank 0 alone reports
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == [1, 2, 3, 4]  # logged once, by rank 0
    state = load_state(run / STATE_FILE)
    assert state["progress"]["step"] == 4
    assert state["rng"].shape[0] == WORLD  # both ranks' generators, for an exact resume
    TextWAE.from_pretrained(run)


def straight_and_resumed_on_rank(rank: int, port: int, corpus: str, out: str) -> None:
    with process_group(rank, port):
        config = load_config(TINY, overrides=[f"data.train={corpus}", "train.max_steps=4",
                                              "train.eval_every=2", "model.z_noise=0.5"])
        train(config, f"{out}/straight")
        done = Trainer._done
        Trainer._done = lambda self: self.progress.step >= 2  # stop halfway, as a crash would
        train(config, f"{out}/resumed")
        Trainer._done = done
        train(config, f"{out}/resumed", resume=True)


def test_a_resumed_two_process_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(toy_texts(200)) + "\n", encoding="utf-8")
    mp.spawn(straight_and_resumed_on_rank, args=(free_port(), str(corpus), str(tmp_path)),
             nprocs=WORLD)
    straight = load_state(tmp_path / "straight" / STATE_FILE)
    resumed = load_state(tmp_path / "resumed" / STATE_FILE)
    assert resumed["progress"]["step"] == 4
    assert not torch.equal(straight["rng"][0], straight["rng"][1])  # ranks draw differently
    for name, tensor in straight["model"].items():  # rank 1's generator came back too
        assert torch.equal(tensor, resumed["model"][name]), name
    assert torch.equal(straight["rng"], resumed["rng"])


def test_torchrun_trains_both_levels_of_a_story_run(tmp_path):
    corpus = write_labelled(tmp_path / "stories.jsonl", toy_stories())
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={WORLD}", str(REPO / "train.py"), "--config",
               str(REPO / "configs" / "stories.yaml"), "--out", str(run), f"data.train={corpus}",
               "data.label_field=label", *TINY_OVERRIDES, "train.max_steps=2",
               "story.hidden_size=16", "story.latent_dim=3", "story.batch_size=8",
               "story.max_steps=4", "story.eval_every=2"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_state(run / STORY_DIR / STATE_FILE)
    assert state["progress"]["step"] == 4 and state["rng"].shape[0] == WORLD
    StoryRun.from_pretrained(run)
