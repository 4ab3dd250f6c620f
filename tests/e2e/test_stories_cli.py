"""Stories from the command line: train.py --config configs/stories.yaml, generate.py story."""

import json

import pytest

from tests.conftest import REPO, TINY_OVERRIDES, run, toy_stories, write_labelled
from textwae.cli.main import main

pytestmark = pytest.mark.slow  # the fixture trains

STORY_OVERRIDES = ["story.hidden_size=16", "story.latent_dim=3", "story.batch_size=8",
                   "story.max_steps=4", "story.eval_every=2", "story.max_sentences=3",
                   "data.label_field=label", "data.valid_fraction=0.2"]
STORY = "anna went to the calm cafe . ben went to the busy park ."


@pytest.fixture(scope="module")
def story_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("stories")
    corpus = write_labelled(root / "stories.jsonl", toy_stories())
    result = run("train.py", "--config", REPO / "configs" / "stories.yaml", "--out",
                 root / "run", f"data.train={corpus}", *TINY_OVERRIDES, *STORY_OVERRIDES)
    assert result.returncode == 0, result.stderr
    return root / "run"


def test_story_prints_stories_of_the_asked_mode_as_jsonl(story_run):
    result = run("generate.py", "story", "--model", story_run, "--n", "3", "--mode", "2",
                 "--max-sentences", "2", "--format", "jsonl", "--max-length", "8")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert set(row) == {"text", "sentences", "mode", "label"}
        assert 1 <= len(row["sentences"]) <= 2
        assert row["text"] == " ".join(row["sentences"])
        assert row["label"] == str(row["mode"])  # the toy labels are the mode numbers


@pytest.mark.parametrize("command", [
    ["reconstruct", "--story", STORY, STORY],
    ["transfer", "--story", "--to", "1", STORY, STORY],
    ["interpolate", "--story", "--steps", "2", STORY, STORY]])
def test_story_flags_give_one_story_per_line(story_run, command):
    result = run("generate.py", *command, "--model", story_run, "--greedy", "--max-length", "8")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_story_refuses_meaningless_redraws_in_one_line(story_run):
    result = run("generate.py", "story", "--model", story_run, "--redraws", "-1")
    assert result.returncode == 2 and not result.stdout
    assert result.stderr.count("\n") == 1
    assert "redraws must be a whole number >= 0, got -1" in result.stderr


def test_a_sentence_run_asked_for_stories_is_one_line_and_exit_2(trained_run):
    result = run("generate.py", "story", "--model", trained_run)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no story model" in result.stderr


def test_evaluate_scores_the_story_level_of_a_story_run(story_run, tmp_path, capsys):
    main(["evaluate", "--model", str(story_run), "--n-samples", "6", "--judge-cache",
          str(tmp_path / "judges"), "--no-embedding-judge", "--no-lm-judge"])
    stories = json.loads(capsys.readouterr().out)["stories"]
    assert 0 <= stories["bleu"] <= 100
    assert 0 <= stories["samples"]["clean_rate"] <= 1
    assert stories["samples"]["sentences_per_story"] >= 1
    assert 0 <= stories["samples"]["repeats"] <= 1 and stories["real_self_bleu"] >= 0
    assert 0 <= stories["coherence"]["real_rate"] <= 1
    assert set(stories["per_mode"]) == {"0", "1", "2"}
