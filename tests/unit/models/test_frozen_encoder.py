"""A frozen pretrained encoder (`model.freeze_encoder`): its pooled features are computed once
per unit and cached, a training step never runs it, and it gets no gradient and no optimiser
state; a tiny BERT built here stands in for MiniLM (tests/unit/models/test_minilm.py)."""

import shutil

import pytest
import torch

from tests.conftest import TINY, toy_texts
from tests.unit.models.test_pretrained import save_tiny_bert
from textwae.config.loading import load_config
from textwae.errors import ConfigError
from textwae.generation import DecodingConfig, reconstruct
from textwae.models.autoencoder import TextWAE
from textwae.models.encoders import TransformerEncoder
from textwae.text.feature_cache import FeatureRows
from textwae.training.pipeline import build_data, prepare_run, train
from textwae.training.trainer import Trainer


@pytest.fixture
def bert(tmp_path):
    save_tiny_bert(tmp_path / "bert", toy_texts())
    return tmp_path / "bert"


def frozen_config(corpus, bert, *overrides):
    return load_config(TINY, overrides=[
        f"data.train={corpus}", "model.encoder=transformer", f"model.encoder_pretrained={bert}",
        "model.freeze_encoder=true", *overrides])


@pytest.fixture
def encoder_calls(monkeypatch) -> list[int]:
    """The batch size of every call of a transformer encoder's forward, from now on."""
    calls: list[int] = []
    forward = TransformerEncoder.forward

    def counted(self, ids, mask):
        calls.append(ids.shape[0])
        return forward(self, ids, mask)

    monkeypatch.setattr(TransformerEncoder, "forward", counted)
    return calls


@pytest.mark.parametrize(("overrides", "message"), [
    ([], "needs a pretrained encoder"),
    (["model.encoder=transformer"], "needs a pretrained encoder"),
    (["model.encoder=transformer", "model.encoder_pretrained=x", "model.encoder_blank=0.1"],
     "model.encoder_blank cannot apply"),
])
def test_freeze_encoder_needs_a_pretrained_encoder_reading_clean_text(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY, overrides=["model.freeze_encoder=true", *overrides])


def test_features_are_computed_once_cached_and_keyed(corpus, bert, tmp_path, encoder_calls):
    cache = tmp_path / "cache"
    config = frozen_config(corpus, bert, f"data.cache_dir={cache}")
    run_dir = tmp_path / "run"
    train_units, valid_units = prepare_run(config, run_dir, resume=False)
    model = TextWAE.build(config, run_dir, parts_from_run=False)
    data = build_data(model, train_units, valid_units)
    assert sum(encoder_calls) == len(train_units) + len(valid_units)  # each unit once
    assert isinstance(data.train.texts.features, FeatureRows)
    assert data.train.texts.features.shape == (len(train_units), model.encoder.output_size)
    batch = data.train.texts.batch([0, 5, 2])
    with torch.no_grad():  # the cached features are the encoder's own
        torch.testing.assert_close(batch.features, model.encoder(*batch.source))

    def folders():
        return sorted(path.name for path in cache.glob("features-*"))

    first = folders()
    assert len(first) == 2  # train and valid
    encoder_calls.clear()
    again = build_data(TextWAE.build(config, run_dir, parts_from_run=False), train_units,
                       valid_units)
    assert encoder_calls == [] and folders() == first  # reused: the encoder is not run
    torch.testing.assert_close(again.train.texts.batch([0, 5, 2]).features, batch.features,
                               rtol=0, atol=0)

    # a training step runs the head and the decoder only; the encoder has no gradient and no
    # optimiser state, and stays in eval mode
    trainer = Trainer(model, data.train, data.valid, run_dir)
    before = {name: p.clone() for name, p in model.encoder.named_parameters()}
    for step_batch in list(trainer.train_batches.batches(0))[:2]:
        trainer.train_step(step_batch)
    assert encoder_calls == []
    assert model.training and not model.encoder.training
    assert all(p.grad is None and not p.requires_grad for p in model.encoder.parameters())
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimised.isdisjoint(id(p) for p in model.encoder.parameters())
    assert all(torch.equal(p, before[name]) for name, p in model.encoder.named_parameters())
    assert any(p.grad is not None for p in model.head.parameters())

    # another corpus, length limit or encoder gives another key
    build_data(model, train_units[1:], valid_units)
    assert sum(encoder_calls) == len(train_units) - 1 and len(folders()) == 3
    shorter = frozen_config(corpus, bert, f"data.cache_dir={cache}", "data.max_length=12")
    build_data(TextWAE.build(shorter, run_dir, parts_from_run=False), train_units, valid_units)
    assert len(folders()) == 5
    with torch.no_grad():
        model.encoder.transformer.embeddings.word_embeddings.weight[5] += 1.0
    encoder_calls.clear()
    build_data(model, train_units, valid_units)
    assert sum(encoder_calls) == len(train_units) + len(valid_units) and len(folders()) == 7


def test_without_a_cache_the_features_are_a_tensor_for_the_run(corpus, bert, tmp_path,
                                                                encoder_calls):
    config = frozen_config(corpus, bert)
    train_units, valid_units = prepare_run(config, tmp_path / "run", resume=False)
    model = TextWAE.build(config, tmp_path / "run", parts_from_run=False)
    data = build_data(model, train_units, valid_units)
    assert isinstance(data.train.texts.features, torch.Tensor)
    assert sum(encoder_calls) == len(train_units) + len(valid_units)
    assert not list(tmp_path.glob("**/features-*"))
    # new text is encoded on the fly, to the same code as its precomputed features give
    model.eval()
    batch = model.tokenize([train_units[0].text]).batch([0])
    assert batch.features is None
    with torch.no_grad():
        torch.testing.assert_close(model.encode(*batch.source).z,
                                   model.encode(*batch.source,
                                                features=data.train.texts.features[[0]]).z)


@pytest.mark.slow
@pytest.mark.parametrize("latent", ["deterministic", "gaussian"])
def test_a_frozen_run_trains_with_labels_saves_loads_and_resumes(corpus, bert, tmp_path, latent):
    cache = tmp_path / "cache"
    run_dir = tmp_path / "run"
    config = frozen_config(corpus, bert, f"model.latent={latent}", "data.label_field=label",
                           "data.labeled_fraction=0.5", f"data.cache_dir={cache}",
                           "train.max_steps=2")
    train(config, run_dir)
    folders = sorted(cache.glob("features-*"))
    shutil.rmtree(bert)  # the run directory alone rebuilds the model and encodes new text
    model = TextWAE.from_pretrained(run_dir)
    assert model.config.model.freeze_encoder and model.config.prior.labels == ["0", "1", "2"]
    texts, modes = reconstruct(model, ["emil went to the calm park ."],
                               DecodingConfig(greedy=True, max_length=8))
    assert len(texts) == len(modes) == 1
    # a resumed run loads the encoder's weights before its features: the same cache key
    train(load_config(run_dir / "config.yaml", overrides=["train.max_steps=4"]), run_dir,
          resume=True)
    assert sorted(cache.glob("features-*")) == folders
    assert TextWAE.from_pretrained(run_dir).config.train.max_steps == 4


@pytest.mark.slow
def test_a_streamed_run_computes_a_frozen_encoders_features_per_pool(corpus, bert, tmp_path):
    run_dir = tmp_path / "run"
    train(frozen_config(corpus, bert, "data.streaming=true", "data.shuffle_buffer=16",
                        "data.stream_sample=60", "train.max_steps=3"), run_dir)
    assert TextWAE.from_pretrained(run_dir).config.model.freeze_encoder
