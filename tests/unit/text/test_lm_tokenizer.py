"""tokenizer.type=lm: the real SmolLM2's pieces that the training split uses, with compact ids."""

from __future__ import annotations

import json

import pytest

from tests.conftest import toy_texts
from textwae.errors import TokenizerError
from textwae.text.tokenizers import SPECIAL_IDS, UNK_TEXT, LMTokenizer


@pytest.fixture(scope="module")
def pieces(smollm2) -> LMTokenizer:
    return LMTokenizer.train(toy_texts(), smollm2, "smollm2")


def test_the_compact_vocabulary_holds_exactly_the_pieces_of_the_training_texts(pieces):
    used = {piece for row in pieces.lm_tokenizer(toy_texts(), add_special_tokens=False)
            ["input_ids"] for piece in row}
    assert set(pieces.pieces) == used and len(pieces.pieces) == len(used)
    assert pieces.vocab_size == SPECIAL_IDS + len(used) < 100  # not the LM's 49,152
    assert (pieces.pad_id, pieces.unk_id, pieces.bos_id, pieces.eos_id) == (0, 1, 2, 3)


def test_training_texts_round_trip_and_are_framed_by_bos_and_eos(pieces):
    texts = toy_texts(40, seed=1)
    for text, ids in zip(texts, pieces.encode_batch(texts), strict=True):
        assert ids[0] == pieces.bos_id and ids[-1] == pieces.eos_id
        assert pieces.unk_id not in ids and min(ids[1:-1]) >= SPECIAL_IDS
        assert pieces.decode(ids) == text
    assert len(pieces.encode(texts[0], max_length=5)) == 5


def test_a_word_with_a_piece_outside_the_set_is_one_unk(pieces):
    ids = pieces.encode("anna went to the zoological garden .")
    known = pieces.encode("anna went to the .")
    assert ids == [*known[:5], pieces.unk_id, pieces.unk_id, *known[5:]]
    assert pieces.decode(ids) == f"anna went to the {UNK_TEXT} {UNK_TEXT} ."


def test_saved_pieces_load_with_the_same_ids_and_fingerprint(pieces, smollm2, tmp_path):
    pieces.save(tmp_path / "pieces.json")
    loaded = LMTokenizer.load(tmp_path / "pieces.json", smollm2, "smollm2")
    assert loaded.fingerprint() == pieces.fingerprint()
    assert loaded.encode_batch(toy_texts(10)) == pieces.encode_batch(toy_texts(10))
    other = LMTokenizer.train(toy_texts(10), smollm2, "smollm2")
    assert other.fingerprint() != pieces.fingerprint()


def test_pieces_of_another_vocabulary_or_a_broken_file_are_refused(pieces, smollm2, tmp_path):
    path = tmp_path / "pieces.json"
    pieces.save(path)
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "lm_vocabulary_sha256": "0" * 64}))
    with pytest.raises(TokenizerError, match="whose vocabulary is not that of smollm2") as error:
        LMTokenizer.load(path, smollm2, "smollm2")
    assert "\n" not in str(error.value)
    path.write_text(json.dumps({**saved, "pieces": ["the"]}))
    with pytest.raises(TokenizerError, match="is not a tokenizer of LM pieces"):
        LMTokenizer.load(path, smollm2, "smollm2")
    with pytest.raises(TokenizerError, match="cannot read tokenizer"):
        LMTokenizer.load(tmp_path / "missing.json", smollm2, "smollm2")
