"""The decoders' output layer: a full softmax or an adaptive one (model.output_cutoffs)."""

import pytest
import torch
import torch.nn.functional as F
import yaml

from tests.conftest import TINY_TRANSFORMER, assert_round_trip, forced_logits, toy_texts
from textwae.config.loading import load_config, load_run_config
from textwae.errors import ConfigError
from textwae.generation import DecodingConfig, reconstruct
from textwae.models.autoencoder import TextWAE
from textwae.text.batching import collate
from textwae.text.tokenizers import PAD_ID

ADAPTIVE = ["model.output_cutoffs=[20, 60]"]  # the tiny vocabulary has 120 ids


def has_adaptive_softmax(model: TextWAE) -> bool:
    return any(isinstance(m, torch.nn.AdaptiveLogSoftmaxWithLoss) for m in model.modules())


@pytest.fixture(params=["gru-full", "gru-adaptive", "transformer-full", "transformer-adaptive"])
def model(request, tiny_config, tiny_model) -> TextWAE:
    decoder, output = request.param.split("-")
    sources = [tiny_config.to_dict(), *([TINY_TRANSFORMER] if decoder == "transformer" else [])]
    config = load_config(*sources, overrides=ADAPTIVE if output == "adaptive" else [])
    model = TextWAE(config, tiny_model.tokenizer)
    assert has_adaptive_softmax(model) == (output == "adaptive")
    return model


def batch_of(model: TextWAE, n: int):
    return collate(model.tokenizer.encode_batch(toy_texts(n)), list(range(n)), PAD_ID)


def test_the_training_loss_is_the_cross_entropy_of_the_decoders_logits(model):
    """target_nll (the output layer at target positions only; an adaptive softmax's clusters
    only where targets lie) scores exactly what the full logits of generation score."""
    model.eval()
    batch = batch_of(model, 12)
    mask = batch.mask[:, 1:]
    with torch.no_grad():
        logits = forced_logits(model, batch)
        recon = model(batch).recon
    expected = F.cross_entropy(logits[mask], batch.ids[:, 1:][mask])
    torch.testing.assert_close(recon, expected, rtol=1e-5, atol=1e-6)
    assert logits.shape == (*batch.ids[:, 1:].shape, model.tokenizer.vocab_size)


@pytest.mark.parametrize("decoder", [[], [TINY_TRANSFORMER]], ids=["gru", "transformer"])
def test_the_adaptive_softmax_gives_a_distribution_over_the_whole_vocabulary(
        tiny_config, tiny_model, decoder):
    config = load_config(tiny_config.to_dict(), *decoder, overrides=ADAPTIVE)
    model = TextWAE(config, tiny_model.tokenizer).eval()
    with torch.no_grad():
        logits = forced_logits(model, batch_of(model, 4))
        step_logits, _ = model.decoder.step(torch.tensor([2, 2]), model.decoder.start(
            model.decoder_code(torch.zeros(2, config.model.latent_dim))))
    torch.testing.assert_close(logits.exp().sum(dim=-1), torch.ones(logits.shape[:-1]))
    assert (logits[..., 60:] > -torch.inf).all()  # the last cluster's tokens can be decoded
    assert step_logits.shape == (2, model.tokenizer.vocab_size)
    torch.testing.assert_close(step_logits.exp().sum(dim=-1), torch.ones(2))


def test_either_output_layer_trains_every_weight_saves_and_decodes(model, tmp_path):
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.model_parameters(), lr=1e-2)
    model.train()
    model(batch_of(model, 32)).loss.backward()
    optimizer.step()
    assert [name for name, p in model.named_parameters() if torch.equal(p, before[name])] == []
    assert_round_trip(model, batch_of(model, 4), tmp_path)
    loaded = TextWAE.from_pretrained(tmp_path)
    texts, _ = reconstruct(loaded, toy_texts(3), DecodingConfig(greedy=True, max_length=8))
    assert len(texts) == 3 and all(isinstance(text, str) for text in texts)


@pytest.mark.parametrize("cutoffs", ["[60, 20]", "[0]", "[]"])
def test_bad_output_cutoffs_are_refused(tiny_config, cutoffs):
    with pytest.raises(ConfigError, match=r"output_cutoffs must be increasing positive token"):
        load_config(tiny_config.to_dict(), overrides=[f"model.output_cutoffs={cutoffs}"])


def test_cutoffs_past_the_vocabulary_are_dropped(tiny_config, tiny_model, tmp_path):
    """The default cutoff (2,000) leaves a small vocabulary its full, tied softmax; a run
    saved before the key existed loads with a full softmax, as it was trained."""
    assert tiny_config.model.output_cutoffs == [2000]
    assert tiny_model.decoder.output.weight is tiny_model.decoder.embedding.weight
    config = load_config(tiny_config.to_dict(), overrides=["model.output_cutoffs=[20, 500]"])
    output = TextWAE(config, tiny_model.tokenizer).decoder.output
    assert output.cutoffs == [20, 120] and output.n_clusters == 1
    (tmp_path / "config.yaml").write_text("model:\n  hidden_size: 24\n", encoding="utf-8")
    assert load_run_config(tmp_path / "config.yaml").model.output_cutoffs is None


def test_a_transformer_run_saved_before_its_adaptive_softmax_keeps_its_lm_head(
        tiny_config, tiny_model, tmp_path):
    """A run directory whose config lacks model.transformer_adaptive_softmax was trained with
    GPT-2's LM head over every piece, whatever its output_cutoffs say, and loads with it."""
    config = load_config(tiny_config.to_dict(), TINY_TRANSFORMER, overrides=[
        *ADAPTIVE, "model.transformer_adaptive_softmax=false"])
    model = TextWAE(config, tiny_model.tokenizer)
    assert not has_adaptive_softmax(model)
    model.save_pretrained(tmp_path)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text(encoding="utf-8"))
    assert saved["model"].pop("transformer_adaptive_softmax") is False
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved), encoding="utf-8")
    assert load_run_config(tmp_path / "config.yaml").model.output_cutoffs == [20, 60]
    assert not has_adaptive_softmax(TextWAE.from_pretrained(tmp_path))
