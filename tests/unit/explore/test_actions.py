"""The explorer's model-side logic, without a browser: it prints what the CLI prints."""

import shlex

import pytest
import torch

from tests.conftest import TINY, toy_texts
from textwae import generation
from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.errors import ConfigError, DataError, TextWAEError
from textwae.explore import actions
from textwae.explore.actions import Explorer, decoding_config
from textwae.explore.latent_map import build_latent_map, mode_names
from textwae.models.autoencoder import TextWAE
from textwae.text.tokenizers import Tokenizer

DECODING = decoding_config(greedy=False, temperature=0.7, top_p=0.9, max_length=8)
GREEDY = decoding_config(greedy=True, temperature=1.0, top_p=1.0, max_length=8)


@pytest.fixture
def labelled_model(corpus):
    config = load_config(TINY, overrides=[f"data.train={corpus}", "prior.labels=[a,b,c]"])
    torch.manual_seed(0)
    return TextWAE(config, Tokenizer.train(toy_texts(), config.tokenizer))


@pytest.fixture
def explorer(labelled_model):
    examples = [Example(text, "abc"[i % 3]) for i, text in enumerate(toy_texts(30))]
    return Explorer(labelled_model, build_latent_map(labelled_model, examples), "runs/my run")


def test_the_map_holds_every_unit_its_mode_and_its_place(explorer, labelled_model):
    lmap = explorer.map
    assert len(lmap.texts) == len(lmap.modes) == lmap.total == 30
    assert lmap.xy.shape == (30, 2) and lmap.means_xy.shape == (3, 2)
    assert lmap.has_labels and lmap.labels[:3] == ["a", "b", "c"]
    codes = generation.encode(labelled_model, lmap.texts).mean
    assert lmap.modes == labelled_model.prior.assign(codes).tolist()
    torch.testing.assert_close(lmap.project(codes), lmap.xy)
    assert lmap.mode_names == ["0 a", "1 b", "2 c"]


def test_a_large_map_is_a_seeded_sample_and_an_empty_one_an_error(tiny_model):
    examples = [Example(text) for text in toy_texts(40)]
    small = build_latent_map(tiny_model, examples, max_points=10)
    assert len(small.texts) == 10 and small.total == 40
    assert small.texts == build_latent_map(tiny_model, examples, max_points=10).texts
    assert not small.has_labels
    assert mode_names(tiny_model) == ["0", "1", "2"]
    with pytest.raises(DataError, match="no held-out units"):
        build_latent_map(tiny_model, [])


def test_encode_shows_the_reconstruction_and_every_transfer_the_cli_prints(explorer):
    text = "anna went to the calm park ."
    found = actions.encode_text(explorer, f"  {text} ", DECODING, seed=3)
    model = explorer.model
    mode = int(model.prior.assign(generation.encode(model, [text]).mean)[0])
    assert found.text == text and found.mode_name == explorer.map.mode_names[mode]
    assert found.reconstruction.text == generation.reconstruct(model, [text], DECODING, 3)[0][0]
    assert [moved.mode for moved in found.transfers] == [k for k in range(3) if k != mode]
    for moved in found.transfers:
        assert moved.text == generation.transfer(model, [text], moved.mode, DECODING, 3)[0][0]
    torch.testing.assert_close(
        torch.tensor(found.xy), explorer.map.project(generation.encode(model, [text]).mean)[0])
    first = shlex.split(found.commands[0])
    assert first[:6] == ["python", "generate.py", "reconstruct", "--model", "runs/my run", text]
    assert first[6:] == ["--temperature", "0.7", "--top-p", "0.9", "--max-length", "8",
                         "--seed", "3"]
    assert len(found.commands) == 3 and "--to" in found.commands[1]


def test_encode_transfers_with_the_chosen_strength(explorer):
    text = "anna went to the calm park ."
    greedy = decoding_config(greedy=True, temperature=1.0, top_p=1.0, max_length=8)
    still = actions.encode_text(explorer, text, greedy, strength=0.0)
    # strength 0 leaves the code where it is: every "transfer" decodes to the reconstruction
    assert {moved.text for moved in still.transfers} == {still.reconstruction.text}
    far = actions.encode_text(explorer, text, greedy, strength=2.5)
    for moved in far.transfers:
        assert moved.text == generation.transfer(explorer.model, [text], moved.mode, greedy,
                                                 strength=2.5)[0][0]
    assert "--strength 2.5" in far.commands[1]


def test_encode_without_a_strength_transfers_by_the_runs_own(explorer, monkeypatch):
    monkeypatch.setattr(explorer.model.config.generation, "transfer_strength", 2.5)
    greedy = decoding_config(greedy=True, temperature=1.0, top_p=1.0, max_length=8)
    found = actions.encode_text(explorer, "anna went to the calm park .", greedy)
    assert ([moved.text for moved in found.transfers] == [moved.text for moved in
            actions.encode_text(explorer, found.text, greedy, strength=2.5).transfers])
    assert all("--strength 2.5" in line for line in found.commands[1:])


def test_the_path_is_the_cli_interpolation_laid_between_its_ends(explorer):
    start, end = "anna went to the park .", "ben went to the busy cafe ."
    path = actions.interpolate_texts(explorer, start, end, 4, GREEDY)
    texts, modes = generation.interpolate(explorer.model, start, end, 4, GREEDY)
    assert [step.text for step in path.steps] == texts
    assert [step.mode for step in path.steps] == modes
    ends = explorer.map.project(generation.encode(explorer.model, [start, end]).mean)
    torch.testing.assert_close(torch.tensor([path.xy[0], path.xy[-1]]), ends)
    middle = torch.tensor(path.xy[1])
    torch.testing.assert_close(middle, ends[0] + (ends[1] - ends[0]) / 3)
    assert shlex.split(path.command) == [
        "python", "generate.py", "interpolate", "--model", "runs/my run", start, end,
        "--steps", "4", "--greedy", "--max-length", "8"]


def test_samples_of_a_mode_by_label_or_index_are_the_cli_samples(explorer):
    drawn = actions.sample_mode(explorer, "b", 5, DECODING, seed=2)
    texts, modes = generation.sample(explorer.model, 5, DECODING, mode=1, seed=2)
    assert [row.text for row in drawn.samples] == texts
    assert [row.mode for row in drawn.samples] == modes
    assert drawn.mode_name == "1 b"
    assert actions.sample_mode(explorer, " 1 ", 5, DECODING, seed=2) == drawn
    assert "--mode 1" in drawn.command and "--code-scale" not in drawn.command


def test_samples_at_a_code_scale_are_the_cli_samples_at_that_scale(explorer):
    drawn = actions.sample_mode(explorer, 1, 4, DECODING, seed=2, code_scale=0.5)
    texts, _ = generation.sample(explorer.model, 4, DECODING, mode=1, seed=2, code_scale=0.5)
    assert [row.text for row in drawn.samples] == texts
    assert "--code-scale 0.5" in drawn.command
    at_mean = actions.sample_mode(explorer, 1, 4, GREEDY, code_scale=0)
    assert len({row.text for row in at_mean.samples}) == 1


def test_a_clicked_point_decodes_its_own_code(explorer):
    point = actions.decode_point(explorer, 4, 3, DECODING, seed=1)
    text = explorer.map.texts[4]
    assert point.text == text and point.label == explorer.map.labels[4]
    assert point.greedy.text == generation.reconstruct(explorer.model, [text], GREEDY)[0][0]
    assert [row.text for row in point.samples] == generation.reconstruct(
        explorer.model, [text] * 3, DECODING, 1)[0]
    with pytest.raises(DataError, match="no point 30"):
        actions.decode_point(explorer, 30, 3, DECODING)


@pytest.mark.parametrize("call, error, message", [
    (lambda e: actions.encode_text(e, "", DECODING), DataError, "empty"),
    (lambda e: actions.encode_text(e, "   \n", DECODING), DataError, "empty"),
    (lambda e: actions.encode_text(e, None, DECODING), DataError, "empty"),
    (lambda e: actions.encode_text(e, "x" * 10_000, DECODING), DataError,
     "10,000 characters long; the explorer takes at most 1,000"),
    (lambda e: actions.interpolate_texts(e, "anna .", "", 5, DECODING), DataError,
     "the second text is empty"),
    (lambda e: actions.interpolate_texts(e, "anna .", "ben .", 1, DECODING), ConfigError,
     "from 2 to 50"),
    (lambda e: actions.sample_mode(e, "sarcasm", 5, DECODING), ConfigError,
     "neither a label nor a component index; labels: a, b, c"),
    (lambda e: actions.sample_mode(e, "7", 5, DECODING), ConfigError, "out of range"),
    (lambda e: actions.sample_mode(e, "", 5, DECODING), ConfigError, "choose a mode"),
    (lambda e: actions.sample_mode(e, "a", 0, DECODING), ConfigError, "from 1 to 50"),
    (lambda e: actions.sample_mode(e, "a", 2.5, DECODING), ConfigError, "whole number"),
    (lambda e: decoding_config(False, 0, 1.0), ConfigError, "temperature"),
])
def test_bad_input_is_a_user_error_that_says_what_to_change(explorer, call, error, message):
    with pytest.raises(error, match=message) as raised:
        call(explorer)
    assert isinstance(raised.value, TextWAEError)
