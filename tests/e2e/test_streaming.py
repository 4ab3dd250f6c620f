"""Streaming corpora: the stream holds the in-memory units, batches cover every training unit
once an epoch, ranks share it out evenly, and a streamed run resumes exactly."""

import dataclasses
import json
from collections import Counter

import pytest

from tests.conftest import TINY_OVERRIDES, run, toy_texts
from textwae.config.loading import load_config
from textwae.config.schema import DataConfig, TokenizerConfig
from textwae.data.labels import FREE
from textwae.data.records import Example
from textwae.data.splits import load_splits, read_examples
from textwae.data.streaming import unit_stream
from textwae.errors import DataError
from textwae.text.batching import TokenizedTexts
from textwae.text.streamed_batches import StreamedBatches
from textwae.text.tokenizers import Tokenizer
from textwae.training.pipeline import train
from textwae.training.trainer import Trainer

from .test_resume import RESUME_OVERRIDES, assert_same_training_state, crash_and_resume

pytestmark = pytest.mark.slow  # every test here runs scripts or trains

LABELS = ["calm", "busy", "cold"]


@pytest.fixture
def shards(tmp_path):
    """Two JSONL files of numbered two-sentence records (every unit distinct), labelled."""
    paths = []
    for shard in range(2):
        path = tmp_path / f"shard{shard}.jsonl"
        rows = [{"text": f"Record {shard} {i} is here. Record {shard} {i} ends now.",
                 "label": LABELS[i % 3]} for i in range(60)]
        path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
        paths.append(path)
    return tmp_path / "shard*.jsonl"


def stream_config(shards, **changes) -> DataConfig:
    return DataConfig(train=str(shards), label_field="label", streaming=True,
                      shuffle_buffer=16, valid_fraction=0.2, **changes)


def streamed(cfg: DataConfig, tokenizer: Tokenizer, rank: int = 0, replicas: int = 1,
             batch_size: int = 8) -> StreamedBatches:
    def prepare(units: list[Example]) -> TokenizedTexts:
        return TokenizedTexts(tokenizer.encode_batch([unit.text for unit in units]),
                              tokenizer.pad_id)

    return StreamedBatches(cfg, prepare, batch_size, seed=3, pool_batches=2,
                           num_replicas=replicas, rank=rank)


@pytest.fixture
def tokenizer(shards):
    texts = [ex.text for ex in read_examples(str(shards), DataConfig(unit="sentence"))]
    return Tokenizer.train(texts, TokenizerConfig(vocab_size=60))


def texts_of(batches, tokenizer) -> list[str]:
    return [tokenizer.decode(row) for batch in batches for row in batch.ids.tolist()]


@pytest.mark.parametrize("fmt", ["auto", "hf"])  # hf: `datasets` streams the files itself
def test_the_stream_holds_the_units_of_the_in_memory_reader(shards, fmt):
    cfg = stream_config(shards, format=fmt)
    units = list(unit_stream(cfg))
    expected = read_examples(str(shards), dataclasses.replace(cfg, streaming=False))
    assert Counter((u["text"], u["label"]) for u in units) == Counter(
        (ex.text, ex.label) for ex in expected)
    assert 0 < sum(u["held_out"] for u in units) < len(units) / 2
    sides = {}  # a record's sentences stay on one side of the split
    for unit in units:
        sides.setdefault(" ".join(unit["text"].split()[:3]), set()).add(unit["held_out"])
    assert len(sides) == 120 and all(len(side) == 1 for side in sides.values())


def test_sample_splits_take_the_first_units_and_the_held_out_ones(shards):
    cfg = stream_config(shards, stream_sample=50)
    train_units, valid_units = load_splits(cfg)
    assert len(train_units) + len(valid_units) == 50
    first = [u for u in unit_stream(cfg)][:50]
    assert [ex.text for ex in train_units] == [u["text"] for u in first if not u["held_out"]]
    assert [ex.text for ex in valid_units] == [u["text"] for u in first if u["held_out"]]


def test_an_epoch_covers_every_training_unit_once_in_buckets(shards, tokenizer):
    cfg = stream_config(shards)
    batches = list(streamed(cfg, tokenizer).batches(epoch=0))
    training = [u["text"] for u in unit_stream(cfg) if not u["held_out"]]
    assert Counter(texts_of(batches, tokenizer)) == Counter(training)
    again = streamed(cfg, tokenizer).batches(epoch=0)
    assert texts_of(again, tokenizer) == texts_of(batches, tokenizer)  # deterministic
    next_epoch = texts_of(streamed(cfg, tokenizer).batches(epoch=1), tokenizer)
    assert next_epoch != texts_of(batches, tokenizer) and sorted(next_epoch) == sorted(training)
    tail = list(streamed(cfg, tokenizer).batches(epoch=0, start=3))
    assert texts_of(tail, tokenizer) == texts_of(batches[3:], tokenizer)
    padding = sum(int((~batch.mask).sum()) for batch in batches)
    assert padding < 0.2 * sum(int(batch.mask.sum()) for batch in batches)  # length buckets


def test_two_ranks_take_disjoint_shares_of_equal_length(shards, tokenizer):
    cfg = stream_config(shards)
    shares = [list(streamed(cfg, tokenizer, rank, replicas=2, batch_size=5).batches(epoch=0))
              for rank in range(2)]
    assert len(shares[0]) == len(shares[1]) > 0
    texts = [set(texts_of(share, tokenizer)) for share in shares]
    assert not texts[0] & texts[1]


def test_streamed_batches_carry_label_guided_modes(shards, tmp_path, monkeypatch):
    config = load_config(overrides=[f"data.train={shards}", "data.label_field=label",
                                    "data.streaming=true", "data.shuffle_buffer=16",
                                    *TINY_OVERRIDES])
    seen = []
    trainer_step = Trainer.train_step

    def record(self, batches):
        seen.extend(batches)
        return trainer_step(self, batches)

    monkeypatch.setattr(Trainer, "train_step", record)
    train(config, tmp_path / "again")
    assert load_config(tmp_path / "again" / "config.yaml").prior.labels == sorted(LABELS)
    assert seen and all(batch.components is not None for batch in seen)
    assert any((batch.components != FREE).any() for batch in seen)


def test_a_streamed_run_resumes_exactly(shards, tmp_path, monkeypatch):
    config = load_config(overrides=[f"data.train={shards}", "data.streaming=true",
                                    "data.shuffle_buffer=16", *RESUME_OVERRIDES,
                                    "train.batch_size=16", "train.max_steps=16",
                                    "train.eval_every=16"])
    # about 12 batches an epoch: the resumed run skips 7 batches, then crosses into epoch 1
    resumed, whole = crash_and_resume(config, tmp_path, monkeypatch, at_step=7)
    assert whole["progress"]["epoch"] >= 1
    assert_same_training_state(resumed, whole)


def test_a_bad_streamed_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"body": toy_texts(1)[0]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="columns present: body"):
        load_splits(DataConfig(train=str(bad), streaming=True))
    result = run("train.py", "--out", tmp_path / "run", f"data.train={bad}",
                 "data.streaming=true")
    assert result.returncode == 2 and "columns present: body" in result.stderr
    assert "Traceback" not in result.stderr
