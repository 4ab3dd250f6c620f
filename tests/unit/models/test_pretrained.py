"""Pretrained parts that bring their own tokenizers: a BERT encoder and a GPT-2 decoder, each
with its own vocabulary (Optimus' pairing), built tiny from tokenizers trained here."""

import json
import pickle
import shutil

import pytest
import torch
import transformers
from tokenizers import Tokenizer as RawTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from tests.conftest import TINY, TINY_TRANSFORMER, forced_logits, toy_texts
from textwae.config.loading import load_config
from textwae.errors import ConfigError, RunDirectoryError
from textwae.generation import DecodingConfig, reconstruct
from textwae.models.autoencoder import TextWAE
from textwae.text.tokenizers import PretrainedTokenizer
from textwae.training.pipeline import train

GPT2_END = "<|endoftext|>"


def save_tiny_bert(path, texts: list[str]) -> None:
    """A 1-layer BERT and its WordPiece tokenizer ([CLS] ... [SEP], pad 0) in `path`."""
    raw = RawTokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=80, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tokenizer = transformers.BertTokenizerFast(tokenizer_object=raw)
    tokenizer.save_pretrained(path)
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=16,
                                     num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64,
                                     pad_token_id=tokenizer.pad_token_id)
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(path)


def save_tiny_gpt2(path, texts: list[str]) -> None:
    """A 1-layer GPT-2 and a byte-level BPE tokenizer whose only special token is
    <|endoftext|> (bos, eos and unk alike, no pad), as GPT-2's own."""
    raw = RawTokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=300, special_tokens=[GPT2_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=GPT2_END, eos_token=GPT2_END, unk_token=GPT2_END)
    tokenizer.save_pretrained(path)
    end = tokenizer.convert_tokens_to_ids(GPT2_END)
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2,
                                     n_positions=64, bos_token_id=end, eos_token_id=end)
    transformers.GPT2LMHeadModel(config).save_pretrained(path)


@pytest.fixture
def parts(tmp_path):
    save_tiny_bert(tmp_path / "bert", toy_texts())
    save_tiny_gpt2(tmp_path / "gpt2", toy_texts())
    return tmp_path / "bert", tmp_path / "gpt2"


def optimus_config(corpus, bert, gpt2, *overrides):
    return load_config(TINY, TINY_TRANSFORMER, overrides=[
        f"data.train={corpus}", f"model.encoder_pretrained={bert}",
        f"model.decoder_pretrained={gpt2}", *overrides])


def test_gpt2_tokenizer_gains_pad_and_unk_and_round_trips_text(parts):
    tokenizer = PretrainedTokenizer.load(parts[1])
    end = tokenizer.tokenizer.convert_tokens_to_ids(GPT2_END)
    assert tokenizer.bos_id == tokenizer.eos_id == end
    assert len({end, tokenizer.pad_id, tokenizer.unk_id}) == 3  # both added, apart from eos
    text = "cora went to the bright museum ."
    ids = tokenizer.encode(text)
    assert ids[0] == ids[-1] == end
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode([*ids[1:], 7, 8]) == text  # stops at eos without a leading bos
    assert len(tokenizer.encode(text * 20, max_length=10)) == 10
    bert = PretrainedTokenizer.load(parts[0])
    assert bert.tokenizer.convert_ids_to_tokens(bert.encode(text)[::len(bert.encode(text)) - 1]) \
        == ["[CLS]", "[SEP]"]


def test_a_pretrained_decoder_keeps_the_lm_head_it_was_trained_with(corpus, parts):
    """model.output_cutoffs builds an adaptive softmax for a decoder built here only."""
    model = TextWAE.build(optimus_config(corpus, *parts, "model.output_cutoffs=[20]"),
                          corpus.parent / "unused", parts_from_run=False)
    assert not any(isinstance(m, torch.nn.AdaptiveLogSoftmaxWithLoss) for m in model.modules())
    head = model.decoder.lm.get_output_embeddings()
    batch = model.tokenize(toy_texts(4)).batch([0, 1, 2, 3])
    with torch.no_grad():
        logits = forced_logits(model, batch)
    assert logits.shape[-1] == head.out_features == model.tokenizer.vocab_size


def test_a_decoder_whose_logits_are_capped_is_refused(corpus, parts):
    """textwae scores tokens by the LM's output embeddings applied to its last hidden states;
    a model that caps its logits after them (Gemma 2's final_logit_softcapping) is refused."""
    config_file = parts[1] / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config_file.write_text(json.dumps({**config, "final_logit_softcapping": 30.0}),
                           encoding="utf-8")
    with pytest.raises(ConfigError, match="not a linear map of its last hidden states"):
        TextWAE.build(optimus_config(corpus, *parts), corpus.parent / "unused",
                      parts_from_run=False)


@pytest.mark.slow
def test_bert_encoder_and_gpt2_decoder_train_save_and_generate(corpus, parts, tmp_path):
    bert, gpt2 = parts
    run_dir = tmp_path / "run"
    train(optimus_config(corpus, bert, gpt2), run_dir)
    # the run records which tokenizer is which; no SentencePiece model is needed
    assert not (run_dir / "tokenizer.model").exists()
    assert (run_dir / "encoder_pretrained" / "tokenizer.json").is_file()
    assert (run_dir / "decoder_pretrained" / "tokenizer.json").is_file()
    shutil.rmtree(bert)
    shutil.rmtree(gpt2)  # the run directory alone rebuilds the model
    model = TextWAE.from_pretrained(run_dir)
    assert model.encoder_tokenizer.vocab_size != model.tokenizer.vocab_size
    assert model.decoder.lm.get_input_embeddings().num_embeddings == model.tokenizer.vocab_size
    batch = model.tokenize(toy_texts(4)).batch([0, 1, 2, 3])
    assert batch.encoder_ids is not None and batch.source[0] is batch.encoder_ids
    assert batch.ids[:, 0].eq(model.tokenizer.bos_id).all()
    assert batch.encoder_ids[:, 0].eq(model.encoder_tokenizer.bos_id).all()
    with torch.no_grad():
        expected = forced_logits(model, batch)
    model.save_pretrained(tmp_path / "copy")
    with torch.no_grad():
        loaded = forced_logits(TextWAE.from_pretrained(tmp_path / "copy"), batch)
    torch.testing.assert_close(loaded, expected, rtol=0, atol=0)
    texts, modes = reconstruct(model, toy_texts(3), DecodingConfig(greedy=True, max_length=8))
    assert len(texts) == len(modes) == 3 and all(isinstance(text, str) for text in texts)


@pytest.mark.slow
def test_a_resumed_run_reads_its_parts_from_the_run_directory(corpus, parts, tmp_path):
    bert, gpt2 = parts
    run_dir = tmp_path / "run"
    train(optimus_config(corpus, bert, gpt2, "train.max_steps=2"), run_dir)
    shutil.rmtree(gpt2)
    config = load_config(run_dir / "config.yaml", overrides=["train.max_steps=4"])
    train(config, run_dir, resume=True)
    state = TextWAE.from_pretrained(run_dir)
    assert state.config.model.decoder_pretrained == str(gpt2)  # the config keeps its source


@pytest.mark.slow
def test_a_pretrained_encoder_with_a_sentencepiece_gru_decoder(corpus, parts, tmp_path):
    run_dir = tmp_path / "run"
    config = load_config(TINY, overrides=[f"data.train={corpus}", "model.encoder=transformer",
                                          f"model.encoder_pretrained={parts[0]}"])
    train(config, run_dir)
    assert (run_dir / "tokenizer.model").is_file()  # the GRU decoder reads SentencePiece ids
    model = TextWAE.from_pretrained(run_dir)
    assert model.encoder_tokenizer is not model.tokenizer
    assert model.encoder_tokenizer.vocab_size == len(model.encoder_tokenizer.tokenizer)


@pytest.mark.slow
def test_a_changed_part_tokenizer_is_refused(corpus, parts, tmp_path):
    run_dir = tmp_path / "run"
    train(optimus_config(corpus, *parts), run_dir)
    tokenizer = PretrainedTokenizer.load(run_dir / "decoder_pretrained")
    tokenizer.tokenizer.add_tokens(["zebra"])
    tokenizer.save(run_dir / "decoder_pretrained")
    with pytest.raises(RunDirectoryError, match="decoder_pretrained/ is not the tokenizer"):
        TextWAE.from_pretrained(run_dir)
    shutil.rmtree(run_dir / "decoder_pretrained")
    with pytest.raises(RunDirectoryError, match="missing decoder_pretrained"):
        TextWAE.from_pretrained(run_dir)


def test_pickled_weights_are_refused(corpus, parts, tmp_path):
    gpt2 = parts[1]
    (gpt2 / "model.safetensors").rename(gpt2 / "pytorch_model.bin")  # never opened: the name
    with pytest.raises(ConfigError, match="never unpickled"):
        train(optimus_config(corpus, *parts), tmp_path / "run")


class PickleTrap:
    """Unpickling this runs code: a test fails if anything ever unpickles it."""

    def __reduce__(self):
        return (exec, ("raise SystemExit('a pickle was loaded')",))


def test_a_safetensors_index_that_names_a_pickle_is_refused(corpus, parts, tmp_path):
    gpt2 = parts[1]
    (gpt2 / "model.safetensors").unlink()
    with open(gpt2 / "weights.bin", "wb") as out:
        pickle.dump(PickleTrap(), out)
    index = {"metadata": {}, "weight_map": {"transformer.wte.weight": "weights.bin"}}
    (gpt2 / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match=r"names 'weights\.bin'.*never pickled"):
        train(optimus_config(corpus, *parts), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    index["weight_map"]["transformer.wte.weight"] = "../elsewhere.safetensors"
    (gpt2 / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="only safetensors files in the same directory"):
        train(optimus_config(corpus, *parts), tmp_path / "run")


@pytest.mark.parametrize("file", ["config.json", "tokenizer_config.json"])
def test_a_directory_naming_custom_code_is_refused_without_a_prompt(corpus, parts, tmp_path,
                                                                   file, capsys):
    bert = parts[0]
    config = json.loads((bert / file).read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel", "AutoTokenizer": ["evil.Tok", None]}
    (bert / file).write_text(json.dumps(config))
    (bert / "evil.py").write_text("raise SystemExit('custom code ran')\n")
    with pytest.raises(ConfigError, match="custom code"):
        train(optimus_config(corpus, *parts), tmp_path / "run")
    assert capsys.readouterr().out == ""  # no "[y/N]" question on stdout


def test_loading_pretrained_parts_prints_nothing_on_stdout(corpus, parts, tmp_path, capfd):
    config = optimus_config(corpus, *parts)
    TextWAE.build(config, tmp_path, parts_from_run=False)
    assert capfd.readouterr().out == ""
