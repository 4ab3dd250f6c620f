"""Gradient accumulation and training precision: the parts of `Trainer.train_step` they touch."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from tests.conftest import TINY, forced_logits, toy_texts
from textwae.config import schema
from textwae.config.loading import load_config
from textwae.errors import ConfigError
from textwae.models.autoencoder import TextWAE
from textwae.text.batching import TokenizedTexts, collate
from textwae.text.token_cache import sequence_lengths
from textwae.text.tokenizers import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from textwae.training.trainer import Trainer, sampled_batches

# deterministic forward, no batch statistic in the loss: the recon loss is a per-token mean
# no randomness, and fp32: bf16 matmuls may round a row differently in a batch of another size
EXACT = ["model.dropout=0", "model.word_dropout=0", "model.z_noise=0", "regularizer.weight=0",
         "train.precision=fp32"]
UNCLIPPED = ["train.grad_clip=1e6"]  # compare the gradients themselves, not their direction


def make_trainer(tmp_path, name, overrides=(), train=None, seed=0):
    config = load_config(TINY, overrides=[*EXACT, *overrides])
    tokenizer = Tokenizer.train(toy_texts(), config.tokenizer)
    torch.manual_seed(seed)
    model = TextWAE(config, tokenizer)
    train = model.tokenize(toy_texts()) if train is None else TokenizedTexts(train, PAD_ID)
    valid = model.tokenize(toy_texts(8, seed=1))
    (tmp_path / name).mkdir()
    return Trainer(model, sampled_batches(train, sequence_lengths(train.ids), config.train), valid,
                   tmp_path / name)


def equal_length_units(n, length, vocab, seed=0):
    generator = torch.Generator().manual_seed(seed)
    body = torch.randint(4, vocab, (n, length - 2), generator=generator)
    return [[BOS_ID, *row.tolist(), EOS_ID] for row in body]


def test_two_micro_batches_update_like_one_batch_of_twice_the_size(tmp_path):
    big = make_trainer(tmp_path, "big", UNCLIPPED)
    accumulated = make_trainer(tmp_path, "accumulated", UNCLIPPED)
    units = equal_length_units(16, 9, big.model.tokenizer.vocab_size)  # 2B units, B = 8
    batch = collate(units, list(range(16)), 0)
    halves = [collate(units[:8], list(range(8)), 0), collate(units[8:], list(range(8, 16)), 0)]

    big.train_step([batch])
    accumulated.train_step(halves)
    pairs = list(zip(big.model.named_parameters(), accumulated.model.named_parameters(),
                     strict=True))
    with_grad = [(name, a, b) for (name, a), (_, b) in pairs if a.grad is not None]
    assert with_grad
    for name, a, b in with_grad:
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=0, msg=name)
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0, msg=name)


def accumulate_on_rank(rank: int, port: int, out: str) -> None:
    """Two micro-batches of 4 on each of 2 ranks; saves the gradients and no_sync's uses."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    trainer = make_trainer(Path(out), f"rank{rank}", UNCLIPPED)
    units = equal_length_units(16, 9, trainer.model.tokenizer.vocab_size)[8 * rank:][:8]
    no_sync, uses = trainer.network.no_sync, []
    trainer.network.no_sync = lambda: uses.append(1) or no_sync()
    trainer.train_step([collate(units[:4], list(range(4)), 0),
                        collate(units[4:], list(range(4, 8)), 0)])
    grads = {name: p.grad for name, p in trainer.model.named_parameters() if p.grad is not None}
    save_file({**grads, "no_sync_uses": torch.tensor([len(uses)])}, f"{out}/rank{rank}.st")
    dist.destroy_process_group()


@pytest.mark.slow  # two processes: about ten seconds
def test_ddp_accumulates_without_syncing_and_matches_the_global_batch(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(accumulate_on_rank, args=(port, str(tmp_path)), nprocs=2)
    big = make_trainer(tmp_path, "big", UNCLIPPED)
    units = equal_length_units(16, 9, big.model.tokenizer.vocab_size)
    big.train_step([collate(units, list(range(16)), 0)])
    for rank in range(2):
        result = load_file(tmp_path / f"rank{rank}.st")
        assert result.pop("no_sync_uses").item() == 1  # the first micro-batch only
        for name, p in big.model.named_parameters():
            if p.grad is not None:
                torch.testing.assert_close(result[name], p.grad, atol=1e-5, rtol=0, msg=name)


def test_fit_counts_optimiser_steps_and_micro_batches(tmp_path):
    trainer = make_trainer(tmp_path, "run", ["train.grad_accumulation=2", "train.max_steps=3",
                                             "train.eval_every=100"])
    steps = []
    trainer.optimizer.step = (lambda step: lambda *a, **k: steps.append(1) or step(*a, **k))(
        trainer.optimizer.step)
    trainer.fit()
    assert len(steps) == trainer.progress.step == 3
    assert trainer.progress.batch_in_epoch == 6  # micro-batches, where a resume starts
    assert trainer.progress.epoch == 0


class Killed(Exception):
    """Stands for the process dying mid-run."""


@pytest.mark.slow
def test_accumulated_training_resumes_exactly_across_an_epoch(tmp_path):
    # 120 units, batches of 8: 15 micro-batches an epoch, so 8 steps (the last of one)
    overrides = ["train.grad_accumulation=2", "train.eval_every=100", "train.checkpoint_every=5"]
    straight = make_trainer(tmp_path, "straight", [*overrides, "train.max_steps=10"])
    straight.fit()
    assert straight.progress.epoch == 1 and straight.progress.batch_in_epoch == 4

    first = make_trainer(tmp_path, "resumed", [*overrides, "train.max_steps=10"])
    train_step = first.train_step

    def killed_after_five_steps(batches):
        if first.progress.step == 5:  # the state of step 5 is on disk
            raise Killed
        return train_step(batches)

    first.train_step = killed_after_five_steps
    with pytest.raises(Killed):
        first.fit()
    resumed = make_trainer(tmp_path, "again", [*overrides, "train.max_steps=10"], seed=1)
    resumed.run_dir = first.run_dir
    resumed.resume()
    assert resumed.progress.batch_in_epoch == 10
    resumed.fit()
    for (name, a), b in zip(straight.model.state_dict().items(),
                            resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0, msg=name)


def test_precision_is_fp32_bf16_or_auto_and_bf16_needs_a_cpu_with_bf16_arithmetic(monkeypatch):
    assert load_config(overrides=["train.precision=bf16"]).train.precision == "bf16"
    with pytest.raises(ConfigError,
                       match=r"train\.precision: .fp16. is not one of fp32, bf16, auto"):
        load_config(overrides=["train.precision=fp16"])
    with pytest.raises(ConfigError, match=r"train\.grad_accumulation must be positive"):
        load_config(overrides=["train.grad_accumulation=0"])
    for native in (True, False):
        monkeypatch.setattr(schema, "cpu_has_native_bf16", lambda native=native: native)
        assert schema.training_precision("auto", "cpu") == ("bf16" if native else "fp32")
        assert schema.training_precision("fp32", "cpu") == "fp32"
        assert schema.training_precision("auto", "cuda:0") == "fp32"  # not measured there
        assert schema.training_precision("bf16", "cuda:0") == "bf16"
    with pytest.raises(ConfigError, match="no native bf16 arithmetic"):
        schema.training_precision("bf16", "cpu")


@pytest.mark.skipif(not schema.cpu_has_native_bf16(), reason="this CPU has no bf16 arithmetic")
def test_a_bf16_step_on_the_cpu_runs_under_autocast_and_tracks_the_fp32_step(tmp_path):
    trainers = {precision: make_trainer(tmp_path, precision, [f"train.precision={precision}"])
                for precision in ("fp32", "bf16", "auto")}
    assert trainers["auto"].precision == "bf16"
    batch = next(iter(trainers["fp32"].train_batches.batches(0, 0)))
    losses = {}
    for precision, trainer in trainers.items():
        torch.manual_seed(1)  # the same dropout and z noise on both sides
        losses[precision] = trainer.train_step(batch).loss.item()
    assert losses["bf16"] != losses["fp32"]  # autocast did run the forward in bf16
    assert losses["auto"] == losses["bf16"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)
    for (name, a), b in zip(trainers["fp32"].model.state_dict().items(),
                            trainers["bf16"].model.state_dict().values(), strict=True):
        assert a.dtype == b.dtype == torch.float32 or not a.is_floating_point(), name


def test_the_loss_terms_stay_fp32_under_bf16_autocast(tiny_model):
    units = tiny_model.tokenizer.encode_batch(toy_texts(8))
    batch = collate(units, list(range(8)), 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = tiny_model(batch)
        assert forced_logits(tiny_model, batch).dtype == torch.bfloat16  # the decoder runs bf16
    for term in (output.loss, output.recon, output.reg, output.latent.z):
        assert term.dtype == torch.float32
    output.loss.backward()
