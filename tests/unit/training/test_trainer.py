import json

import pytest

from tests.conftest import TINY
from textwae import generation
from textwae.config.loading import load_config
from textwae.errors import RunDirectoryError
from textwae.evaluation.metrics import corpus_bleu
from textwae.models.autoencoder import TextWAE
from textwae.runs.checkpoint import STATE_FILE, load_state
from textwae.training.pipeline import train
from textwae.training.trainer import learning_rate


def test_learning_rate_warms_up_then_decays():
    config = load_config(overrides=["train.lr=1.0", "train.warmup_steps=10",
                                    "train.min_lr_ratio=0.1"])
    rates = [learning_rate(config.train, step / 100, step) for step in range(101)]
    assert rates[0] == pytest.approx(0.1)
    assert rates[9] == pytest.approx(1.0)
    assert rates[50] < rates[20] < rates[10]
    assert rates[100] == pytest.approx(0.1)


@pytest.mark.slow
def test_a_run_directory_is_complete_and_never_pickled(tiny_config, tmp_path):
    run = tmp_path / "run"
    metrics = train(tiny_config, run)
    assert {"recon", "accuracy", "mmd", "loss"} <= set(metrics)
    for name in ["config.yaml", "model.safetensors", "tokenizer.model", "metrics.jsonl"]:
        assert (run / name).is_file()
    state = load_state(run / STATE_FILE)
    assert state["progress"]["step"] == tiny_config.train.max_steps
    files = {path.relative_to(run).as_posix() for path in run.rglob("*") if path.is_file()}
    assert files == {"config.yaml", "model.safetensors", "tokenizer.model", "metrics.jsonl",
                     "state/trainer.safetensors", "latent_map.png", "training_curves.png"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "valid"} == {record["split"] for record in records}


@pytest.mark.slow
def test_training_refuses_to_overwrite_a_run(tiny_config, tmp_path):
    run = tmp_path / "run"
    train(tiny_config, run)
    weights = (run / "model.safetensors").read_bytes()
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        train(tiny_config, run)
    assert (run / "model.safetensors").read_bytes() == weights


@pytest.mark.slow
def test_resume_continues_where_training_stopped(tiny_config, tmp_path):
    run = tmp_path / "run"
    train(tiny_config, run)
    longer = load_config(run / "config.yaml", overrides=["train.max_steps=6"])
    train(longer, run, resume=True)
    assert load_state(run / STATE_FILE)["progress"]["step"] == 6


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_reconstructs(corpus, tmp_path):
    config = load_config(TINY, overrides=[
        f"data.train={corpus}", "model.embedding_dim=64", "model.hidden_size=128",
        "model.latent_dim=16", "train.max_steps=300", "train.eval_every=100",
        "train.batch_size=16", "train.lr=3e-3", "train.warmup_steps=20",
        "model.word_dropout=0.0", "regularizer.weight=1.0"])
    run = tmp_path / "run"
    train(config, run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first_train = next(r["recon"] for r in records if r["split"] == "train")
    last_valid = [r["recon"] for r in records if r["split"] == "valid"][-1]
    assert last_valid < 0.2 * first_train
    model = TextWAE.from_pretrained(run)
    texts = [line and json.loads(line)["text"] for line in corpus.read_text().splitlines()[:40]]
    outputs, _ = generation.reconstruct(model, texts, generation.DecodingConfig(greedy=True))
    bleu, _ = corpus_bleu(outputs, texts)
    assert bleu > 50
