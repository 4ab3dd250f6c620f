import pytest
import torch

from tests.conftest import (
    assert_label_mmd_joins_the_training_loss,
    assert_round_trip,
    forced_logits,
    toy_texts,
)
from textwae import generation
from textwae.config.loading import load_config
from textwae.config.schema import ModelConfig
from textwae.errors import ConfigError, RunDirectoryError
from textwae.models.autoencoder import TextWAE, word_dropout
from textwae.models.encoders import GRUEncoder
from textwae.text.batching import collate
from textwae.text.tokenizers import BOS_ID, PAD_ID, UNK_ID, Tokenizer


def batch_of(model, texts):
    sequences = model.tokenizer.encode_batch(texts)
    return collate(sequences, list(range(len(texts))), PAD_ID)


def test_padding_does_not_change_the_encoder_output(tiny_model):
    tiny_model.eval()
    short, long = toy_texts(2)
    alone = batch_of(tiny_model, [short])
    padded = batch_of(tiny_model, [short, long + " and then it rained all day long"])
    assert padded.ids.shape[1] > alone.ids.shape[1]
    with torch.no_grad():
        h_alone = tiny_model.encoder(alone.ids, alone.mask)
        h_padded = tiny_model.encoder(padded.ids, padded.mask)
    torch.testing.assert_close(h_alone[0], h_padded[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("encoder_hidden_size, output_size", [(None, 24), (16, 32)])
def test_gru_encoder_directions_default_to_half_the_decoder_state(encoder_hidden_size,
                                                                   output_size):
    cfg = ModelConfig(hidden_size=24, encoder_hidden_size=encoder_hidden_size)
    assert GRUEncoder(cfg, vocab_size=50).output_size == output_size


def test_forward_returns_finite_named_parts(tiny_model):
    output = tiny_model(batch_of(tiny_model, toy_texts(6)))
    assert torch.isfinite(output.loss)
    assert output.loss.item() == pytest.approx(
        output.recon.item() + tiny_model.config.regularizer.weight * output.reg.item(), rel=1e-5)


def test_one_step_changes_every_trained_weight(tiny_model):
    before = {name: p.detach().clone() for name, p in tiny_model.named_parameters()}
    optimizer = torch.optim.AdamW(tiny_model.model_parameters(), lr=1e-2)
    tiny_model(batch_of(tiny_model, toy_texts(8))).loss.backward()
    optimizer.step()
    unchanged = [name for name, p in tiny_model.named_parameters()
                 if torch.equal(p, before[name])]
    assert unchanged == []


def test_save_then_load_gives_identical_logits(tiny_model, tmp_path):
    assert_round_trip(tiny_model, batch_of(tiny_model, toy_texts(4)), tmp_path)


def test_a_foreign_tokenizer_is_refused(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    other = Tokenizer.train([t.upper() for t in toy_texts()], tiny_model.config.tokenizer)
    other.save(tmp_path / "tokenizer.model")
    with pytest.raises(RunDirectoryError, match="tokenizer"):
        TextWAE.from_pretrained(tmp_path)


def test_word_dropout_touches_only_real_non_bos_tokens():
    torch.manual_seed(0)
    ids = torch.tensor([[BOS_ID, 7, 8, 9, PAD_ID, PAD_ID]] * 200)
    dropped = word_dropout(ids, 0.5)
    assert (dropped[:, 0] == BOS_ID).all()
    assert (dropped[:, 4:] == PAD_ID).all()
    share = (dropped[:, 1:4] == UNK_ID).float().mean().item()
    assert 0.4 < share < 0.6


def test_word_dropout_is_off_in_eval_mode(tiny_model):
    tiny_model.config.model.word_dropout = 0.9
    tiny_model.eval()
    batch = batch_of(tiny_model, toy_texts(4))
    with torch.no_grad():
        torch.testing.assert_close(tiny_model(batch).recon, tiny_model(batch).recon,
                                   rtol=0, atol=0)


def test_a_learnable_prior_gets_no_weight_decay(tiny_config, tiny_model):
    config = load_config(tiny_config.to_dict(), overrides=["prior.learnable=true"])
    model = TextWAE(config, tiny_model.tokenizer)
    decayed, exempt = model.optimizer_groups(0.01)
    assert {id(p) for p in exempt["params"]} == {id(p) for p in model.prior.parameters()}
    assert exempt["weight_decay"] == 0.0 and decayed["weight_decay"] == 0.01
    assert len(decayed["params"]) + len(exempt["params"]) == len(model.model_parameters())


def test_the_main_optimizer_leaves_the_latent_adversary_to_its_own(tiny_config, tiny_model):
    config = load_config(tiny_config.to_dict(), overrides=["model.regularizer=gan"])
    model = TextWAE(config, tiny_model.tokenizer)
    adversary = {id(p) for p in model.regularizer.parameters()}
    trained = {id(p) for p in model.model_parameters()}
    assert adversary and not adversary & trained
    assert trained | adversary == {id(p) for p in model.parameters()}


def test_evaluation_mode_takes_a_batch_of_one(tiny_model):
    """The regulariser is a batch statistic (MMD needs two codes): eval skips it."""
    tiny_model.eval()
    with torch.no_grad():
        output = tiny_model(batch_of(tiny_model, toy_texts(1)))
    assert torch.isfinite(output.loss) and output.reg == 0


def test_a_run_from_before_encoder_hidden_size_is_told_how_to_load(tiny_model, tmp_path):
    tiny_model.config.model.encoder_hidden_size = 16  # not the default (hidden_size 24 // 2)
    model = TextWAE(tiny_model.config, tiny_model.tokenizer)
    model.save_pretrained(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(config.read_text().replace("encoder_hidden_size: 16",
                                                 "encoder_hidden_size: null"))
    with pytest.raises(RunDirectoryError, match="add `encoder_hidden_size: 16` under model"):
        TextWAE.from_pretrained(tmp_path)
    config.write_text(config.read_text().replace("encoder_hidden_size: null",
                                                 "encoder_hidden_size: 16"))
    TextWAE.from_pretrained(tmp_path)


def test_a_run_from_before_mode_input_loads_as_it_was_trained(tiny_config, tmp_path):
    tiny_config.model.mode_input = False  # what every run saved before the key existed did
    model = TextWAE(tiny_config, Tokenizer.train(toy_texts(), tiny_config.tokenizer)).eval()
    model.save_pretrained(tmp_path)
    config = tmp_path / "config.yaml"
    assert "  mode_input: false\n" in config.read_text()
    config.write_text(config.read_text().replace("  mode_input: false\n", ""))
    loaded = TextWAE.from_pretrained(tmp_path)
    assert loaded.config.model.mode_input is False
    batch = batch_of(model, toy_texts(4))
    with torch.no_grad():
        torch.testing.assert_close(forced_logits(loaded, batch), forced_logits(model, batch),
                                   rtol=0, atol=0)


def test_z_noise_is_added_to_the_decoders_code_while_training_only(tiny_model):
    tiny_model.config.model.z_noise, tiny_model.config.model.mode_input = 0.5, False
    z = torch.zeros(4000, 4)
    tiny_model.eval()
    assert tiny_model.decoder_code(z) is z
    tiny_model.train()
    noisy = tiny_model.decoder_code(z)
    assert noisy.std().item() == pytest.approx(0.5, rel=0.05)
    tiny_model.config.model.z_noise = 0.0
    assert tiny_model.decoder_code(z) is z


@pytest.mark.parametrize("decoder", ["gru", "transformer"])
def test_mode_input_gives_the_decoder_the_mode_each_code_lies_in(tiny_config, decoder,
                                                                  tmp_path):
    tiny_config.model.mode_input, tiny_config.model.decoder = True, decoder
    tiny_config.model.transformer_dim, tiny_config.model.transformer_layers = 16, 1
    model = TextWAE(tiny_config, Tokenizer.train(toy_texts(), tiny_config.tokenizer)).eval()
    z = model.prior.sample(300, generator=torch.Generator().manual_seed(0))  # (300, 4)
    read = model.decoder_code(z)
    assert read.shape == (300, 4 + 3)  # the code, then p(k|z) over the 3 modes
    assert torch.equal(read[:, :4], z)
    torch.testing.assert_close(read[:, 4:].sum(dim=1), torch.ones(300))
    assert torch.equal(read[:, 4:].argmax(dim=1), model.prior.assign(z))
    moved = z + model.prior.means[1] - model.prior.means[model.prior.assign(z)]
    assert (model.decoder_code(moved)[:, 4:].argmax(dim=1) == 1).float().mean() > 0.95
    assert_round_trip(model, batch_of(model, toy_texts(4)), tmp_path)
    assert len(generation.sample(model, 3, generation.DecodingConfig(max_length=5))[0]) == 3


def spy(monkeypatch, owner, name: str, calls: list) -> None:
    """Record the arguments of every call of owner.name, which still runs."""
    original = getattr(owner, name)

    def recorded(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)


def test_z_noise_reaches_the_decoder_but_not_the_regulariser(tiny_model, monkeypatch):
    tiny_model.config.model.z_noise = 1.0
    tiny_model.train()
    decoded, regularised = [], []
    spy(monkeypatch, tiny_model.decoder, "target_nll", decoded)
    spy(monkeypatch, tiny_model.regularizer, "forward", regularised)
    output = tiny_model(batch_of(tiny_model, toy_texts(8)))
    torch.testing.assert_close(regularised[-1][0].z, output.latent.z)
    read = decoded[-1][1][:, :4]  # the code the decoder read, before any mode input
    assert (read - output.latent.z).abs().mean() > 0.5


def test_encoder_noise_changes_what_the_encoder_reads_in_training_only(tiny_model, monkeypatch):
    tiny_model.config.model.encoder_word_drop = 0.5
    tiny_model.config.model.encoder_shuffle = 2
    batch = batch_of(tiny_model, toy_texts(16))
    read = []
    spy(monkeypatch, tiny_model, "encode", read)
    tiny_model.train()
    output = tiny_model(batch)
    ids, mask = read[-1]
    assert ids.shape == batch.ids.shape and mask.sum() < batch.mask.sum()  # words were dropped
    assert output.tokens == batch.mask[:, 1:].sum()  # the decoder rebuilds every clean token
    tiny_model.eval()
    with torch.no_grad():
        tiny_model(batch)
    assert read[-1][0] is batch.ids and read[-1][1] is batch.mask


def test_label_mmd_joins_the_training_loss_with_its_weight(tiny_model, monkeypatch):
    batch = batch_of(tiny_model, toy_texts(6))
    components = torch.tensor([0, 0, 1, 1, 2, -1])
    assert_label_mmd_joins_the_training_loss(
        tiny_model, lambda: tiny_model(batch, components), components,
        monkeypatch)


def test_a_config_left_to_auto_builds_no_model_outside_a_run(tiny_config):
    tokenizer = Tokenizer.train(toy_texts(), tiny_config.tokenizer)
    tiny_config.prior.components = "auto"
    with pytest.raises(ConfigError, match=r"prior\.components: auto is chosen"):
        TextWAE(tiny_config, tokenizer)
