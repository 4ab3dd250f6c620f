"""A story run: both levels trained into one run directory, rebuilt, resumed, generating."""

import re
from collections import Counter

import pytest
import torch

from tests.conftest import TINY, toy_stories, write_labelled
from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.data.splits import load_splits
from textwae.errors import ConfigError, DataError, RunDirectoryError
from textwae.generation import (
    DecodingConfig,
    StoryLevel,
    interpolate,
    operations,
    reconstruct,
    sample,
    transfer,
)
from textwae.generation import stories as story_generation
from textwae.generation.decoding import decode_texts
from textwae.generation.stories import mend_stories
from textwae.models.autoencoder import TextWAE
from textwae.models.story import STORY_DIR, StoryRun
from textwae.runs.checkpoint import NAMES_FILE, STATE_FILE, WEIGHTS_FILE, load_state
from textwae.text.names import ROLE
from textwae.text.tokenizers import UNK_ID
from textwae.training.pipeline import train
from textwae.training.trainer import Trainer

pytestmark = pytest.mark.slow  # every test here trains

STORY = ["story.enabled=true", "story.hidden_size=16", "story.latent_dim=3",
         "story.batch_size=8", "story.max_steps=4", "story.eval_every=2",
         "story.max_sentences=3", "data.label_field=label"]
DECODING = DecodingConfig(max_length=8)


@pytest.fixture
def story_config(tmp_path):
    corpus = write_labelled(tmp_path / "stories.jsonl", toy_stories())
    return load_config(TINY, overrides=[f"data.train={corpus}", *STORY])


@pytest.fixture
def story_run(story_config, tmp_path):
    train(story_config, tmp_path / "run")
    return tmp_path / "run"


def test_a_story_run_holds_both_levels_and_rebuilds_them(story_run):
    state = load_state(story_run / STORY_DIR / STATE_FILE)
    assert state["progress"]["step"] == 4  # the story stage ran its own budget
    assert load_state(story_run / STATE_FILE)["progress"]["step"] == 4
    assert (story_run / STORY_DIR / "metrics.jsonl").read_text().count('"valid"') == 2
    run = StoryRun.from_pretrained(story_run)
    assert run.sentences.config.prior.labels == ["0", "1", "2"]
    # the sentence modes weigh as the training sentences' labels do; the story modes equally
    sentences = load_splits(run.sentences.config.data)[0]
    counts = Counter(unit.label for unit in sentences)
    shares = torch.tensor([counts[label] / len(sentences) for label in ["0", "1", "2"]])
    assert torch.allclose(run.sentences.prior.weights, shares)
    assert torch.allclose(run.stories.prior.weights, torch.full((3,), 1 / 3))
    for name, tensor in run.stories.state_dict().items():
        assert torch.equal(tensor, state["model"][name]), name
    TextWAE.from_pretrained(story_run)  # the sentence commands read the same directory


def test_stories_are_sampled_from_a_mode_and_reconstructed_per_input(story_run):
    run = StoryRun.from_pretrained(story_run)
    stories, modes = sample(run, 5, DECODING, mode=2, seed=1)
    assert len(stories) == 5 and set(modes) <= {0, 1, 2}
    assert all(1 <= len(story.sentences) <= 3 for story in stories)
    assert [s.text for s in stories] == [s.text for s in sample(run, 5, DECODING, 2, 1)[0]]
    shorter, _ = sample(StoryLevel(run, max_sentences=1), 5, DECODING, mode=2, seed=1)
    assert all(len(story.sentences) == 1 for story in shorter)
    drawn, _ = sample(StoryLevel(run, path_temperature=1.0), 5, DECODING, mode=2, seed=1)
    assert [s.text for s in drawn] == [
        s.text for s in sample(StoryLevel(run, path_temperature=1.0), 5, DECODING, 2, 1)[0]]
    for bad in (0.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="path temperature"):
            sample(StoryLevel(run, path_temperature=bad), 1, DECODING)
    texts = [story.text for story in toy_stories(4)]
    assert len(reconstruct(run, texts, DecodingConfig(greedy=True, max_length=8))[0]) == 4
    moved, _ = transfer(run, texts, 1, DecodingConfig(greedy=True, max_length=8))
    assert len(moved) == 4
    path, _ = interpolate(run, texts[0], texts[1], 4, DecodingConfig(greedy=True, max_length=8))
    assert len(path) == 4


def test_a_story_the_story_model_reads_as_another_mode_is_drawn_again(story_run, monkeypatch):
    """Reading stands in for the story model's: a story 'lies in its mode' when its text's
    length is even. A story is drawn again while it is odd, up to `redraws` times."""
    run = StoryRun.from_pretrained(story_run)

    def texts(redraws: int) -> list[str]:
        return [s.text for s in sample(run, 24, DECODING, mode=1, seed=1, redraws=redraws)[0]]

    kept = texts(0)
    read = []

    def even(level, stories, modes):
        read.append(modes.tolist())
        return torch.tensor([len(story.text) % 2 == 0 for story in stories], dtype=torch.bool)

    monkeypatch.setattr(operations, "reads_as",
                        lambda level, stories, modes: torch.ones(len(stories), dtype=torch.bool))
    assert texts(4) == kept
    monkeypatch.setattr(operations, "reads_as", even)
    again = texts(8)
    odd_before = sum(len(text) % 2 for text in kept)
    assert odd_before >= 4  # the stand-in rejects enough stories for the test to see redraws
    assert sum(len(text) % 2 for text in again) < odd_before / 4
    assert {mode for modes in read for mode in modes} == {1}
    assert [a for a, k in zip(again, kept, strict=True) if len(k) % 2 == 0] == [
        k for k in kept if len(k) % 2 == 0]  # a story that reads as its mode is kept
    with pytest.raises(ConfigError, match="redraws must be a whole number >= 0"):
        sample(run, 1, DECODING, redraws=-1)


def test_a_story_says_each_sentence_once(story_run):
    run = StoryRun.from_pretrained(story_run)
    codes = torch.randn(3, run.sentences.config.model.latent_dim,
                        generator=torch.Generator().manual_seed(0))
    paths = [codes, codes[:1]]
    stories = [["a", "b", "a"], ["c"]]
    rewritten = mend_stories(run, paths, stories, DecodingConfig(greedy=True, max_length=8),
                       torch.Generator().manual_seed(0))
    assert stories == [["a", "b", "a"], ["c"]]  # the input is left as it was
    first, second = rewritten
    assert first[:2] == ["a", "b"] and len(set(first)) == len(first)
    assert second == ["c"]
    # a sentence that every redraw decodes the same (near-greedy sampling) is left out
    near_greedy = DecodingConfig(temperature=1e-4, max_length=8)
    text = decode_texts(run.sentences, codes[:1], DecodingConfig(greedy=True, max_length=8))[0]
    assert mend_stories(run, [codes[[0, 0]]], [[text, text]], near_greedy,
                  torch.Generator()) == [[text]]
    # without names as roles, census first names are the characters: a "She" after "Ben" alone
    # is decoded again from its code, one after "Anna" is left as it is
    clash = mend_stories(run, [codes[:2]], [["Ben won .", "She cried ."]], near_greedy,
                   torch.Generator())
    assert clash[0][0] == "Ben won ." and clash[0][1] != "She cried ."
    agreeing = [["Anna won .", "She cried ."]]
    assert mend_stories(run, [codes[:2]], agreeing, near_greedy, torch.Generator()) == agreeing
    # sampled stories hold no repeat; as decoded, the same draws repeat (an untrained decoder;
    # every draw kept, so that both calls decode the same story codes)
    stories, _ = sample(run, 8, DecodingConfig(greedy=True, max_length=8), seed=3, redraws=0)
    assert all(len(set(story.sentences)) == len(story.sentences) for story in stories)
    allowed, _ = sample(StoryLevel(run, as_decoded=True), 8,
                        DecodingConfig(greedy=True, max_length=8), seed=3, redraws=0)
    assert any(len(set(story.sentences)) < len(story.sentences) for story in allowed)
    assert [story.sentences[0] for story in allowed] == [
        story.sentences[0] for story in stories]


def test_a_sentence_run_is_refused_as_a_story_run(story_config, tmp_path):
    story_config.story.enabled = False
    train(story_config, tmp_path / "sentences")
    with pytest.raises(RunDirectoryError, match="no story model"):
        StoryRun.from_pretrained(tmp_path / "sentences")


def test_a_resumed_story_stage_ends_exactly_where_an_uninterrupted_one_does(
        story_config, tmp_path, monkeypatch):
    train(story_config, tmp_path / "straight")
    with monkeypatch.context() as patch:  # the story stage stops after 2 of its 4 steps
        patch.setattr(Trainer, "_done", lambda self: self.progress.step >= (
            2 if self.run_dir.name == STORY_DIR else 4))
        train(story_config, tmp_path / "resumed")
    assert load_state(tmp_path / "resumed" / STORY_DIR / STATE_FILE)["progress"]["step"] == 2
    sentence_weights = (tmp_path / "resumed" / WEIGHTS_FILE).read_bytes()
    train(story_config, tmp_path / "resumed", resume=True)
    assert (tmp_path / "resumed" / WEIGHTS_FILE).read_bytes() == sentence_weights  # not retrained
    straight = load_state(tmp_path / "straight" / STORY_DIR / STATE_FILE)
    resumed = load_state(tmp_path / "resumed" / STORY_DIR / STATE_FILE)
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name


def test_a_story_run_with_masked_names_gives_each_story_one_name_per_role(tmp_path, monkeypatch):
    stories = [Example(re.sub(r"\b(anna|ben|cora|emil|fay)\b", lambda m: m.group(0).title(),
                              ex.text), ex.label) for ex in toy_stories()]
    corpus = write_labelled(tmp_path / "named.jsonl", stories)
    config = load_config(TINY, overrides=[f"data.train={corpus}", *STORY, "data.mask_names=true"])
    train(config, tmp_path / "run")
    run = StoryRun.from_pretrained(tmp_path / "run")
    names = run.sentences.names
    assert set(names.sexes) == {"Anna", "Ben", "Cora", "Emil", "Fay"}
    # the sentence model reads roles: a story is encoded as its roles are, whatever the names
    tokens = run.sentences.tokenize(["Cora met Ben at the cafe .", "<f1> met <m1> at the cafe ."])
    assert tokens.ids[0] == tokens.ids[1]
    assert run.sentences.tokenizer.processor.piece_to_id("<f1>") != UNK_ID
    codes = StoryLevel(run).encode(["Anna went to the cafe . Anna met Ben .",
                                    "Fay went to the cafe . Fay met Emil ."])
    assert torch.equal(codes[0], codes[1])
    # decoded roles become names: one per role for the whole story, of the role's sex
    told = StoryLevel(run).fill_names([story_generation.Story(
        ["<f1> went out .", "<m1> met <f1> .", "<f1> left ."])], torch.Generator(), None)[0]
    woman, man = told.sentences[1].split()[2], told.sentences[1].split()[0]
    assert told.sentences == [f"{woman} went out .", f"{man} met {woman} .", f"{woman} left ."]
    assert names.sexes[woman] == "f" and names.sexes[man] == "m"
    for story in sample(run, 4, DECODING, seed=0)[0]:
        assert not ROLE.search(story.text), story.text
    # a sentence opening with a pronoun its story's characters contradict is decoded again,
    # and kept if every decoding clashes; one that agrees is left as it is
    codes = torch.zeros(3, run.sentences.config.model.latent_dim)
    redrawn = iter(["She wept .", "<m1> smiled ."])
    monkeypatch.setattr(story_generation, "_decode_sentences",
                        lambda run, codes, decoding, generator: [next(redrawn)] * len(codes))
    assert mend_stories(run, [codes], [["<m1> won .", "She cried .", "He left ."]], DECODING,
                  torch.Generator()) == [["<m1> won .", "<m1> smiled .", "He left ."]]
    monkeypatch.setattr(story_generation, "_decode_sentences",
                        lambda run, codes, decoding, generator: ["Her cat ran ."] * len(codes))
    assert mend_stories(run, [codes[:2]], [["<m1> won .", "She cried ."]], DECODING,
                  torch.Generator()) == [["<m1> won .", "Her cat ran ."]]
    (tmp_path / "run" / NAMES_FILE).unlink()
    with pytest.raises(RunDirectoryError, match=re.escape(NAMES_FILE)):
        StoryRun.from_pretrained(tmp_path / "run")


def test_a_corpus_without_names_is_refused_before_a_run_directory_is_made(story_config, tmp_path):
    story_config.data.mask_names = True  # the toy stories' names are in lower case
    with pytest.raises(DataError, match=r"data\.mask_names"):
        train(story_config, tmp_path / "unnamed")
    assert not (tmp_path / "unnamed").exists()
