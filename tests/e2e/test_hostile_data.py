"""Hostile data (issue 36's small and odd corpora, and the judge cache): a corpus of a few
distinct texts trains; what cannot be read or learnt from is one line on stderr with exit 2;
`evaluate` runs where its judge cache cannot be kept, and never trusts an edited one."""

import json
import math
import os

import pytest

from tests.conftest import TINY_OVERRIDES, toy_texts
from tests.e2e.test_bad_input import copy_of, fails, snapshot
from textwae.cli.main import main, train_main
from textwae.data import records
from textwae.data.records import Example
from textwae.data.units import split_train_valid
from textwae.evaluation.judges import NgramJudge
from textwae.runs.checkpoint import STATE_FILE

# every test here runs the scripts' entry points, in the repository (in_repo)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("in_repo")]

SENTENCES = ["the cat sat on the mat .", "a dog ran in the park .", "birds sing at dawn .",
             "she read a long book .", "rain fell all night .", "we ate soup for lunch ."]



# -- a corpus of a few distinct texts ----------------------------------------------------------

@pytest.mark.parametrize("lines", [
    SENTENCES[:3],  # three lines: one is held out, and validation sees one code
    ["😀😀😀", "🐱🐶", "🍕🍔🍟", "🎉✨", "🌧️☔"],  # no letters at all
    SENTENCES * 40,  # six texts: split_seed=1 puts none under the fraction, so one moves
], ids=["three-lines", "emoji-only", "six-repeated-40-times"])
def test_a_corpus_of_a_few_distinct_texts_trains(tmp_path, capsys, lines):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "run"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_main(["--out", str(out), f"data.train={corpus}", "data.split_seed=1",
                *TINY_OVERRIDES])
    result = json.loads(capsys.readouterr().out)
    assert (out / STATE_FILE).is_file() and math.isfinite(result["loss"])


def test_a_training_split_one_unit_over_a_batch_trains(tmp_path, capsys):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "run"
    texts = list(dict.fromkeys(toy_texts()))[:12]
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    train, _ = split_train_valid([Example(text) for text in texts], 0.05, seed=0)
    train_main(["--out", str(out), f"data.train={corpus}", *TINY_OVERRIDES,
                f"train.batch_size={len(train) - 1}", "train.max_steps=4"])  # two epochs
    assert (out / STATE_FILE).is_file() and math.isfinite(json.loads(capsys.readouterr().out)
                                                          ["loss"])


@pytest.mark.parametrize("lines, message", [
    (["the same line ."] * 50, "1 distinct text"),
    (SENTENCES[:2], "the training split holds 1 unit"),
])
def test_a_corpus_too_small_to_split_is_one_line(tmp_path, capfd, lines, message):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "run"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = fails(capfd, train_main, "--out", out, f"data.train={corpus}", *TINY_OVERRIDES)
    assert message in err and "data.valid" in err and not out.exists()


# -- what cannot be learnt from or reached ---------------------------------------------------

def test_units_longer_than_sentencepiece_reads_name_the_reason(tmp_path, capfd):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "run"
    corpus.write_text("".join(f"{word} " * 20000 + "\n" for word in ("alpha", "beta", "gamma")),
                      encoding="utf-8")  # lines of over 100,000 bytes
    err = fails(capfd, train_main, "--out", out, f"data.train={corpus}", *TINY_OVERRIDES)
    assert "cannot train the tokenizer" in err
    assert "longer than SentencePiece's limit of 65536 bytes" in err and "data.unit" in err
    assert err.count("\n") == 1 and not out.exists()


def test_a_datasets_name_with_no_hub_in_reach_is_one_line(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(records, "hub_reachable", lambda: False)  # as with no network
    out = tmp_path / "run"
    err = fails(capfd, train_main, "--out", out, "data.train=textwae-tests/no-such-corpus",
                *TINY_OVERRIDES)
    assert err.count("\n") == 1, err
    assert "textwae-tests/no-such-corpus" in err and "offline" in err and not out.exists()


# -- the judge cache -------------------------------------------------------------------------

def evaluate(capfd, run_dir, *extra) -> tuple[dict, str]:
    main(["evaluate", "--model", str(run_dir), "--n-samples", "2", "--no-embedding-judge",
          "--no-lm-judge", *map(str, extra)])
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
    return json.loads(captured.out), captured.err


@pytest.mark.parametrize("place", ["read-only", "not-a-folder"])
def test_evaluate_runs_where_its_judge_cache_cannot_be_kept(trained_run, tmp_path, capfd,
                                                           place):
    run_dir = copy_of(trained_run, tmp_path)  # the default cache: tmp_path/.judges
    before = snapshot(run_dir)
    if place == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        for folder in (run_dir, tmp_path):
            folder.chmod(0o555)
    else:
        (tmp_path / ".judges").write_text("a file where the cache would go", encoding="utf-8")
    try:
        result, err = evaluate(capfd, run_dir)
    finally:
        for folder in (run_dir, tmp_path):
            folder.chmod(0o755)
    assert "cannot keep the n-gram judge" in err
    assert result["samples"]["judge_ppl_ratio"] > 0
    assert snapshot(run_dir) == before


def test_evaluate_refits_an_edited_judge_cache_with_a_warning(trained_run, tmp_path, capfd):
    run_dir, cache = copy_of(trained_run, tmp_path), tmp_path / "cache"
    result, _ = evaluate(capfd, run_dir, "--judge-cache", cache)
    (path,) = cache.iterdir()
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header] ^= 0xFF  # the first byte of the count tables
    path.write_bytes(bytes(data))
    again, err = evaluate(capfd, run_dir, "--judge-cache", cache)
    assert "was changed" in err
    assert again["samples"]["judge_ppl_ratio"] == result["samples"]["judge_ppl_ratio"]
    NgramJudge.load(path)  # replaced by a sound file
