"""The generation core over a stub level: sample, reconstruct, interpolate and transfer need
nothing of a level but its protocol."""

import torch

from tests.unit.generation.stub_level import CodeLevel
from textwae import generation
from textwae.generation import DecodingConfig, SentenceLevel, StoryLevel, level_of
from textwae.models.reading import LANDED
from textwae.models.story import StoryRun

DECODING = DecodingConfig()


def test_all_four_operations_run_over_a_stub_level():
    level = CodeLevel(sample_redraws=0)
    prior = level.prior
    # sample: codes of the asked mode, each output the text of its code
    outputs, modes = generation.sample(level, 70, DECODING, mode=1, seed=2, code_scale=0.1)
    assert len(outputs) == 70 and set(modes) == {1}
    torch.testing.assert_close(prior.assign(level.encode(outputs)), torch.ones(70).long())
    # reconstruct: each text back, in the mode its code lies in
    texts = outputs[:5]
    rebuilt, rebuilt_modes = generation.reconstruct(level, texts, DECODING)
    assert rebuilt == texts and rebuilt_modes == modes[:5]
    # interpolate: evenly spaced codes from one end to the other
    start, end = "0.0 0.0", "4.0 -2.0"
    path, _ = generation.interpolate(level, start, end, 5, DECODING)
    torch.testing.assert_close(level.encode(path), torch.tensor(
        [[0.0, 0.0], [1.0, -0.5], [2.0, -1.0], [3.0, -1.5], [4.0, -2.0]]))
    # transfer: every output read back lies in the target mode, each moved no further than
    # the first strength that lands it
    moved, moved_modes = generation.transfer(level, texts, 2, DECODING, strength=2.0, steps=4)
    assert moved_modes == [2] * len(texts)
    chances = prior.component_log_probs(level.encode(moved)).softmax(dim=1)[:, 2]
    assert (chances >= LANDED).all()
    for text, out in zip(texts, moved, strict=True):
        z = level.encode([text])
        tried = [generation.operations.transfer_codes(level, z, 2, k) for k in (0.5, 1, 1.5, 2)]
        first = next((code for code in tried
                      if prior.component_log_probs(code).softmax(dim=1)[0, 2] >= 0.9),
                     tried[-1])
        torch.testing.assert_close(level.encode([out]), first, atol=1e-5, rtol=0)


def test_samples_that_read_as_another_mode_are_drawn_again_as_the_levels_settings_say():
    """At code scale 3 many draws of mode 0 land nearer another mode's mean: the redraws the
    run's settings ask for bring them into their mode, at more decodings."""
    kept, redrawn = CodeLevel(sample_redraws=0), CodeLevel(sample_redraws=6)
    first, _ = generation.sample(kept, 40, DECODING, mode=0, seed=0, code_scale=3.0)
    again, _ = generation.sample(redrawn, 40, DECODING, mode=0, seed=0, code_scale=3.0)
    mode_0 = torch.zeros(40, dtype=torch.long)
    astray_before = (~generation.operations.reads_as(kept, first, mode_0)).sum()
    assert astray_before >= 5  # the test sees redraws
    assert (~generation.operations.reads_as(redrawn, again, mode_0)).sum() < astray_before
    assert redrawn.decoded > kept.decoded == 40


def test_the_level_of_a_loaded_run_is_picked_by_its_type(tiny_model):
    assert isinstance(level_of(tiny_model), SentenceLevel)
    assert level_of(tiny_model).model is tiny_model
    stub = CodeLevel()
    assert level_of(stub) is stub
    run = StoryRun.__new__(StoryRun)
    assert isinstance(level_of(run), StoryLevel) and level_of(run).run is run
