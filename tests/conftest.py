"""Shared fixtures: a tiny corpus, a tiny config and a tiny trained-for-nothing model."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textwae.config import Config, load_config
from textwae.model import TextWAE
from textwae.tokenizer import Tokenizer

torch.set_num_threads(1)  # tiny models: a second thread costs more than it gives

REPO = Path(__file__).resolve().parent.parent
EMBEDDED_CORPUS = REPO / "data" / "stories.jsonl"

TINY = {
    "tokenizer": {"vocab_size": 120},
    "model": {"embedding_dim": 16, "hidden_size": 24, "latent_dim": 4},
    "prior": {"components": 3},
    "train": {"batch_size": 8, "max_steps": 4, "eval_every": 2, "log_every": 1,
              "checkpoint_every": 2, "warmup_steps": 1},
}

# merged over TINY: both parts transformers, two layers of width 16
TINY_TRANSFORMER = {
    "data": {"max_length": 32},
    "model": {"encoder": "transformer", "decoder": "transformer", "transformer_layers": 2,
              "transformer_heads": 2, "transformer_dim": 16, "transformer_ff": 32,
              "transformer_positions": 40},
}


# the tiny model as the scripts' key=value overrides
TINY_OVERRIDES = ["tokenizer.vocab_size=120", "model.embedding_dim=16", "model.hidden_size=24",
                  "model.latent_dim=4", "prior.components=3", "train.batch_size=8",
                  "train.max_steps=3", "train.eval_every=3", "train.warmup_steps=1"]


def run(script: str, *args) -> subprocess.CompletedProcess:
    """Run a script of the repository as users do; its output is captured as text."""
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def toy_texts(n: int = 120, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    names = ["anna", "ben", "cora", "dev", "emil", "fay"]
    places = ["cafe", "park", "museum", "station"]
    moods = ["calm", "busy", "cold", "bright"]
    return [f"{rng.choice(names)} went to the {rng.choice(moods)} {rng.choice(places)} ."
            for _ in range(n)]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"text": text, "label": str(i % 3)})
             for i, text in enumerate(toy_texts())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(corpus: Path) -> Config:
    return load_config(TINY, overrides=[f"data.train={corpus}"])


@pytest.fixture
def tiny_model(tiny_config: Config) -> TextWAE:
    tokenizer = Tokenizer.train(toy_texts(), tiny_config.tokenizer)
    return TextWAE(tiny_config, tokenizer)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A run directory trained by train.py on the toy texts; tests must not change it."""
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(toy_texts()) + "\n", encoding="utf-8")
    result = run("train.py", "--out", root / "run", f"data.train={corpus}", *TINY_OVERRIDES)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run"] == str(root / "run")
    return root / "run"


def assert_round_trip(model: TextWAE, batch, run_dir: Path) -> None:
    """save_pretrained -> from_pretrained gives bit-identical logits on `batch`."""
    model.eval()
    with torch.no_grad():
        expected = model(batch).logits
    model.save_pretrained(run_dir)
    loaded = TextWAE.from_pretrained(run_dir)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, expected, rtol=0, atol=0)
