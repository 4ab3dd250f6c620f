"""The scripts as users run them: outputs on stdout, user errors exit 2 without a traceback."""

import json
import shutil

import pytest

from tests.conftest import TINY_OVERRIDES, run

pytestmark = pytest.mark.slow  # every test here runs scripts or trains


def test_sample_prints_one_text_per_line(trained_run):
    result = run("generate.py", "sample", "--model", trained_run, "--n", 4, "--max-length", 8)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4


def test_sample_from_one_mode_as_jsonl(trained_run):
    result = run("generate.py", "sample", "--model", trained_run, "--n", 3, "--mode", 2,
                 "--format", "jsonl", "--max-length", 8)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    assert all(set(record) == {"text", "mode"} for record in records)


def test_sample_at_code_scale_0_decodes_the_modes_mean_every_time(trained_run):
    result = run("generate.py", "sample", "--model", trained_run, "--n", 3, "--mode", 1,
                 "--code-scale", 0, "--greedy", "--max-length", 8, "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3 and len({record["text"] for record in records}) == 1
    assert {record["mode"] for record in records} == {1}


def test_reconstruct_interpolate_and_modes(trained_run, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("anna went to the park .\n\nben went to the cafe .\n", encoding="utf-8")
    rebuilt = run("generate.py", "reconstruct", "--model", trained_run, "--input", texts,
                  "--greedy", "--max-length", 8)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert len(rebuilt.stdout.splitlines()) == 2
    path = run("generate.py", "interpolate", "--model", trained_run, "anna went .", "ben went .",
               "--steps", 4, "--greedy", "--max-length", 8)
    assert len(path.stdout.splitlines()) == 4
    modes = run("generate.py", "modes", "--model", trained_run, "--n", 2, "--max-length", 8)
    lines = modes.stdout.splitlines()
    assert [line for line in lines if line.startswith("== mode")] == [
        "== mode 0 ==", "== mode 1 ==", "== mode 2 =="]
    reports = [line for line in lines if line.startswith("-- nearest training units")]
    assert len(reports) == 3
    assert len([line for line in lines if line.startswith("   ")]) == 3 * 3
    assert len(lines) == 3 * (1 + 2 + 1 + 3)


@pytest.mark.parametrize("script, args, message", [
    ("train.py", ["train.max_stpes=3"], "did you mean 'train.max_steps'"),
    ("train.py", ["data.train=/nonexistent/corpus.txt"], "/nonexistent/corpus.txt"),
    ("train.py", ["model.latent=fuzzy"], "model.latent"),
    ("generate.py", ["sample", "--model", "/nonexistent/run"], "does not exist"),
    ("generate.py", ["sample", "--model", "RUN", "--mode", "7"], "out of range"),
    ("generate.py", ["sample", "--model", "RUN", "--temperature", "0"], "temperature"),
    ("generate.py", ["reconstruct", "--model", "RUN", "  "], "empty"),
])
def test_user_errors_exit_2_with_a_message_and_no_traceback(trained_run, script, args, message):
    args = [str(trained_run) if arg == "RUN" else arg for arg in args]
    result = run(script, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_incomplete_run_directory_is_refused(trained_run, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.yaml").write_bytes((trained_run / "config.yaml").read_bytes())
    result = run("generate.py", "sample", "--model", partial)
    assert result.returncode == 2
    assert "model.safetensors" in result.stderr and "tokenizer.model" in result.stderr


def test_a_truncated_weights_file_is_refused(trained_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    result = run("generate.py", "sample", "--model", broken)
    assert result.returncode == 2
    assert "corrupt" in result.stderr


def test_training_into_an_existing_run_exits_2_and_keeps_it(trained_run):
    before = (trained_run / "model.safetensors").read_bytes()
    result = run("train.py", "--out", trained_run, *TINY_OVERRIDES)
    assert result.returncode == 2
    assert "already holds a run" in result.stderr
    assert (trained_run / "model.safetensors").read_bytes() == before
