"""Transformer encoder and decoder: padding, the z prefix cache, conditioning, pretrained dirs."""

import pytest
import torch
import transformers

from tests.conftest import TINY, TINY_TRANSFORMER, assert_round_trip, toy_texts
from textwae.config.loading import load_config
from textwae.config.schema import TokenizerConfig
from textwae.errors import ConfigError
from textwae.generation import DecodingConfig, decode
from textwae.models.autoencoder import TextWAE
from textwae.models.decoders import TransformerDecoder
from textwae.models.encoders import TransformerEncoder
from textwae.text.batching import collate
from textwae.text.tokenizers import BOS_ID, EOS_ID, PAD_ID, Tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(toy_texts(), TokenizerConfig(vocab_size=120))


def build(tokenizer: Tokenizer, *overrides: str, seed: int = 0) -> TextWAE:
    torch.manual_seed(seed)
    # these tests hand the decoder codes of their own: the code alone, no mode input
    overrides = ["model.mode_input=false", *overrides]
    return TextWAE(load_config(TINY, TINY_TRANSFORMER, overrides=overrides), tokenizer)


def batch_of(model: TextWAE, texts: list[str]):
    sequences = model.tokenizer.encode_batch(texts, model.config.data.max_length)
    return collate(sequences, list(range(len(texts))), PAD_ID)


def codes(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed)) * 2


@pytest.mark.parametrize("pooling", ["mean", "first"])
def test_padding_does_not_change_the_encoder_output(tokenizer, pooling):
    model = build(tokenizer, f"model.pooling={pooling}").eval()
    assert isinstance(model.encoder, TransformerEncoder)
    short, long = toy_texts(2)
    alone = batch_of(model, [short])
    padded = batch_of(model, [short, long + " and then it rained all day long"])
    assert padded.ids.shape[1] > alone.ids.shape[1]
    with torch.no_grad():
        h_alone, h_padded = model.encoder(alone.ids, alone.mask), model.encoder(padded.ids,
                                                                                padded.mask)
    assert h_padded.shape == (2, 16)
    torch.testing.assert_close(h_alone[0], h_padded[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("injection", ["memory", "embedding", "both"])
def test_teacher_forced_logits_equal_cached_steps(tokenizer, injection):
    decoder = build(tokenizer, f"model.z_injection={injection}").decoder.eval()
    assert isinstance(decoder, TransformerDecoder)
    z, ids = codes(3), torch.randint(4, tokenizer.vocab_size, (3, 7))
    with torch.no_grad():
        forced = decoder(ids, z)  # (B, T, V)
        state, stepped = decoder.start(z), []
        for t in range(ids.shape[1]):
            logits, state = decoder.step(ids[:, t], state)
            stepped.append(logits)
    prefix = 1 if injection in ("memory", "both") else 0
    assert state.cache.get_seq_length() == prefix + ids.shape[1]  # the prefix is never rerun
    torch.testing.assert_close(torch.stack(stepped, dim=1), forced, rtol=1e-4, atol=1e-5)


def recompute_greedy(decoder, z: torch.Tensor, steps: int) -> torch.Tensor:
    """The baseline: run the full forward on the whole prefix for every new token."""
    ids = torch.full((z.shape[0], 1), BOS_ID)
    for _ in range(steps):
        next_token = decoder(ids, z)[:, -1].argmax(dim=-1)  # (B,)
        ids = torch.cat([ids, next_token[:, None]], dim=1)
    return ids[:, 1:]


def cached_greedy(decoder, z: torch.Tensor, steps: int) -> torch.Tensor:
    state, tokens, out = decoder.start(z), torch.full((z.shape[0],), BOS_ID), []
    for _ in range(steps):
        logits, state = decoder.step(tokens, state)
        tokens = logits.argmax(dim=-1)
        out.append(tokens)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("injection", ["memory", "both"])
def test_cached_generation_equals_recompute_token_for_token(tokenizer, injection):
    model = build(tokenizer, f"model.z_injection={injection}", seed=3).eval()
    z = codes(4, seed=2)
    with torch.no_grad():
        expected = recompute_greedy(model.decoder, z, steps=12)
        assert torch.equal(cached_greedy(model.decoder, z, steps=12), expected)
        decoded = decode(model, z, DecodingConfig(greedy=True, max_length=12))
    for row, ids in zip(expected.tolist(), decoded, strict=True):
        assert ids == (row[: row.index(EOS_ID)] if EOS_ID in row else row)


def test_step_leaves_its_state_usable_and_reorder_selects_rows(tokenizer):
    decoder = build(tokenizer).decoder.eval()
    z, first, second = codes(3), torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10])
    with torch.no_grad():
        start = decoder.start(z)
        _, after_one = decoder.step(first, start)
        again, _ = decoder.step(first, start)  # start was not extended by the first call
        torch.testing.assert_close(again, decoder.step(first, decoder.start(z))[0])
        order = torch.tensor([2, 0, 0])
        picked, _ = decoder.step(second, decoder.reorder_state(after_one, order))
        _, alone = decoder.step(first[order], decoder.start(z[order]))
        torch.testing.assert_close(picked, decoder.step(second, alone)[0])


def test_the_z_prefix_takes_no_position(tokenizer):
    decoder = build(tokenizer, "model.z_injection=memory").decoder.eval()
    seen = []
    decoder.lm.transformer.wpe.register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0][0].tolist()))
    z, ids = codes(2), torch.randint(4, tokenizer.vocab_size, (2, 4))
    with torch.no_grad():
        decoder(ids, z)
        state = decoder.start(z)
        for t in range(ids.shape[1]):
            _, state = decoder.step(ids[:, t], state)
    assert seen == [[0, 1, 2, 3], [0], [1], [2], [3]]


@pytest.mark.parametrize("injection", ["memory", "embedding"])
def test_z_changes_the_decoder_output(tokenizer, injection):
    decoder = build(tokenizer, f"model.z_injection={injection}").decoder.eval()
    assert (decoder.memory is None) == (injection == "embedding")
    assert (decoder.z_to_embedding is None) == (injection == "memory")
    ids = torch.randint(4, tokenizer.vocab_size, (2, 5))
    with torch.no_grad():
        a, b = decoder(ids, codes(2, seed=1)), decoder(ids, codes(2, seed=2))
    assert (a - b).abs().amax(dim=-1).min() > 1e-3  # every position of every row moves


def test_transformer_model_trains_saves_and_loads(tokenizer, tmp_path):
    model = build(tokenizer)
    batch = batch_of(model, toy_texts(8))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.model_parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        loss = model(batch).loss
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
    trained = {name for name, _ in model.named_parameters() if name.startswith(("encoder",
                                                                              "decoder"))}
    unchanged = [name for name, p in model.named_parameters()
                 if name in trained and torch.equal(p, before[name])]
    assert unchanged == []
    assert_round_trip(model, batch, tmp_path)


def save_tiny_gpt2(path, vocab_size: int) -> None:
    config = transformers.GPT2Config(vocab_size=vocab_size, n_embd=16, n_layer=1, n_head=2,
                                     n_positions=40, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                                     pad_token_id=PAD_ID)
    transformers.GPT2LMHeadModel(config).save_pretrained(path)


def test_pretrained_parts_with_the_run_vocabulary_load(tokenizer, tmp_path):
    save_tiny_gpt2(tmp_path / "decoder", tokenizer.vocab_size)
    bert = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32, pad_token_id=PAD_ID)
    transformers.BertModel(bert).save_pretrained(tmp_path / "encoder")
    model = build(tokenizer, f"model.decoder_pretrained={tmp_path / 'decoder'}",
                  f"model.encoder_pretrained={tmp_path / 'encoder'}").eval()
    saved = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "decoder")
    torch.testing.assert_close(model.decoder.lm.get_input_embeddings().weight,
                               saved.get_input_embeddings().weight)
    with torch.no_grad():
        assert torch.isfinite(model(batch_of(model, toy_texts(3))).loss)


def test_a_part_with_another_vocabulary_and_no_tokenizer_is_refused(tokenizer, tmp_path):
    save_tiny_gpt2(tmp_path / "other", tokenizer.vocab_size + 5)
    with pytest.raises(ConfigError, match="and no tokenizer files"):
        build(tokenizer, f"model.decoder_pretrained={tmp_path / 'other'}")
    with pytest.raises(ConfigError, match="not a local pretrained model directory"):
        build(tokenizer, f"model.encoder_pretrained={tmp_path / 'missing'}")


@pytest.mark.parametrize("override", ["model.transformer_heads=3", "model.transformer_positions=8",
                                      "model.pooling=max", "model.z_injection=cross"])
def test_meaningless_transformer_settings_raise(override):
    with pytest.raises(ConfigError):
        load_config(TINY, TINY_TRANSFORMER, overrides=[override])
