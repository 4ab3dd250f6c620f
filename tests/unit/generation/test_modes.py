import pytest
import torch
import yaml

from tests.conftest import toy_texts
from tests.unit.generation.stub_level import CodeLevel
from textwae import generation
from textwae.config.schema import PriorConfig
from textwae.data.labels import (
    FREE,
    label_shares,
    mode_labels,
    resolve_mode,
    unit_components,
)
from textwae.data.records import Example
from textwae.errors import ConfigError
from textwae.evaluation.mode_report import mode_report
from textwae.generation import SentenceLevel, levels, operations
from textwae.models.autoencoder import TextWAE
from textwae.text.batching import collate


def examples(labels):
    return [Example(text=f"unit {i}", label=label) for i, label in enumerate(labels)]


def test_labels_take_sorted_order_unless_the_prior_names_them():
    data = examples(["b", "a", None, "b"])
    assert mode_labels(data, PriorConfig(components=3)) == ["a", "b"]
    assert mode_labels(data, PriorConfig(components=3, labels=["b", "a", "c"])) == ["b", "a", "c"]
    assert mode_labels(examples([None, None]), PriorConfig()) is None


def test_fewer_components_than_labels_is_an_error():
    with pytest.raises(ConfigError, match="every label needs its own component"):
        mode_labels(examples(["a", "b", "c"]), PriorConfig(components=2))


def test_a_label_missing_from_prior_labels_is_an_error():
    with pytest.raises(ConfigError, match=r"not in prior\.labels"):
        mode_labels(examples(["a", "z"]), PriorConfig(labels=["a", "b"]))


def test_labelled_fraction_keeps_about_that_share_and_is_stable():
    data = examples(["a", "b"] * 2000)
    some = unit_components(data, ["a", "b"], fraction=0.1, seed=0)
    share = (some != FREE).float().mean().item()
    assert 0.08 < share < 0.12
    assert torch.equal(some, unit_components(data, ["a", "b"], fraction=0.1, seed=0))
    assert not torch.equal(some, unit_components(data, ["a", "b"], fraction=0.1, seed=1))
    every = unit_components(data, ["a", "b"])
    assert every.tolist() == [0, 1] * 2000
    assert (some[some != FREE] == every[some != FREE]).all()


def test_label_shares_count_the_units_whose_labels_guide_the_modes():
    data = examples(["a", "a", "a", "b"] * 500 + [None] * 1000)  # type: ignore[list-item]
    assert label_shares(data, ["a", "b"]) == pytest.approx([0.75, 0.25])
    assert label_shares(data, ["b", "a"]) == pytest.approx([0.25, 0.75])
    some = label_shares(data, ["a", "b"], fraction=0.2, seed=3)
    assert some is not None and some[0] == pytest.approx(0.75, abs=0.05)
    assert label_shares(data, ["a", "b", "c"]) is None  # "c" has no unit: equal weights


def test_mode_names_resolve_to_components_and_label_names_win():
    assert resolve_mode("praise", ["complaint", "praise"], 4) == 1
    assert resolve_mode("3", ["complaint", "praise"], 4) == 3
    assert resolve_mode("0", ["1", "0"], 2) == 1  # a value equal to a label means that label
    with pytest.raises(ConfigError, match="out of range"):
        resolve_mode("4", None, 4)
    with pytest.raises(ConfigError, match="neither a label"):
        resolve_mode("joy", ["complaint"], 2)


@pytest.mark.slow
def test_the_label_term_pulls_labelled_codes_to_their_component(tiny_model):
    """Training the encoder on the label term alone moves codes into their own modes."""
    torch.manual_seed(0)
    texts = toy_texts(48)
    names = sorted({text.split()[0] for text in texts})
    components = torch.tensor([names.index(text.split()[0]) % 3 for text in texts])
    sequences = tiny_model.tokenizer.encode_batch(texts)
    batch = collate(sequences, list(range(48)), tiny_model.tokenizer.pad_id)

    def agreement():
        with torch.no_grad():
            z = tiny_model.encode(batch.ids, batch.mask).mean
        return (tiny_model.prior.assign(z) == components).float().mean().item()

    before = agreement()
    optimizer = torch.optim.Adam([*tiny_model.encoder.parameters(),
                                  *tiny_model.latent.parameters()], lr=1e-2)
    tiny_model.eval()  # no dropout: the toy has to be separable by the encoder alone
    for _ in range(60):
        optimizer.zero_grad()
        z = tiny_model.encode(batch.ids, batch.mask).z
        tiny_model.prior.label_loss(z, components).backward()
        optimizer.step()
    assert before < 0.6
    assert agreement() > 0.9


def test_free_units_add_no_label_term(tiny_model):
    z = torch.randn(4, tiny_model.config.model.latent_dim)
    assert tiny_model.prior.label_loss(z, torch.full((4,), FREE)) == 0.0
    assert tiny_model.prior.label_loss(z, None) == 0.0


def test_transfer_moves_each_code_to_the_target_mode(tiny_model):
    texts = toy_texts(6)
    decoding = generation.DecodingConfig(greedy=True, max_length=5)
    for target in range(tiny_model.prior.components):
        _, modes = generation.transfer(tiny_model, texts, target, decoding)
        assert modes == [target] * len(texts)


def test_transfer_keeps_the_offset_from_the_mean(tiny_model, monkeypatch):
    captured = {}

    def keep(model, z, decoding, generator=None):
        captured["z"] = z
        return [""] * len(z)

    monkeypatch.setattr(levels, "decode_texts", keep)
    texts = toy_texts(3)
    z = generation.encode(tiny_model, texts).mean
    source = tiny_model.prior.assign(z)
    generation.transfer(tiny_model, texts, 1, generation.DecodingConfig())
    means = tiny_model.prior.means
    torch.testing.assert_close(captured["z"] - means[1], z - means[source])


def test_mode_report_lists_distinct_nearest_units_and_every_units_label(tiny_model):
    data = [Example(text=text, label=str(i % 2)) for i, text in enumerate(toy_texts(30) * 2)]
    report = mode_report(tiny_model, data, nearest=3)
    assert len(report) == tiny_model.prior.components
    for mode in report:
        assert len(mode["nearest"]) == len(set(mode["nearest"])) == 3
    assert sum(sum(mode["labels"].values()) for mode in report) == len(data)


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0, 2.5])
def test_transfer_strength_moves_each_code_k_times_the_step_between_the_means(tiny_model,
                                                                              strength):
    z = generation.encode(tiny_model, toy_texts(8)).mean
    source = tiny_model.prior.assign(z)
    means = tiny_model.prior.means
    moved = operations.transfer_codes(tiny_model, z, 2, strength)
    torch.testing.assert_close(moved - z, strength * (means[2] - means[source]))


def test_transfer_strength_0_leaves_the_code_and_1_is_the_move_between_means(tiny_model):
    z = generation.encode(tiny_model, toy_texts(8)).mean
    means = tiny_model.prior.means
    torch.testing.assert_close(operations.transfer_codes(tiny_model, z, 1, 0.0), z)
    torch.testing.assert_close(operations.transfer_codes(tiny_model, z, 1, 1.0),
                               z - means[tiny_model.prior.assign(z)] + means[1])
    greedy = generation.DecodingConfig(greedy=True, max_length=6)
    texts = toy_texts(4)
    assert (generation.transfer(tiny_model, texts, 1, greedy, strength=0.0)
            == generation.reconstruct(tiny_model, texts, greedy))


def test_without_a_strength_a_transfer_searches_up_to_the_runs_own(tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model.config.generation, "transfer_strength", 2.5)
    monkeypatch.setattr(tiny_model.config.generation, "transfer_steps", 5)
    assert operations.transfer_strengths(tiny_model) == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert operations.transfer_strengths(tiny_model, 1.0, 4) == [0.25, 0.5, 0.75, 1.0]
    assert operations.transfer_strengths(tiny_model, 3.0, 1) == [3.0]
    z = generation.encode(tiny_model, toy_texts(8)).mean
    torch.testing.assert_close(operations.transfer_codes(tiny_model, z, 2),
                               operations.transfer_codes(tiny_model, z, 2, 2.5))
    greedy = generation.DecodingConfig(greedy=True, max_length=6)
    texts = toy_texts(4)
    assert (generation.transfer(tiny_model, texts, 2, greedy)
            == generation.transfer(tiny_model, texts, 2, greedy, strength=2.5, steps=5))
    assert (generation.transfer(tiny_model, texts, 2, greedy, steps=1)
            != generation.transfer(tiny_model, texts, 2, greedy, strength=0.0))


def test_one_step_moves_every_code_by_the_strength_itself(tiny_model):
    greedy = generation.DecodingConfig(greedy=True, max_length=6)
    texts = toy_texts(6)
    moved = operations.transfer_codes(tiny_model, generation.encode(tiny_model, texts).mean, 2,
                                      1.5)
    texts_out, modes = generation.transfer(tiny_model, texts, 2, greedy, strength=1.5, steps=1)
    assert texts_out == generation.decode_texts(tiny_model, moved, greedy)
    assert modes == tiny_model.prior.assign(moved).tolist()


def test_a_search_keeps_each_code_at_the_first_strength_that_lands():
    """With a level whose outputs read back as their codes, landing is the prior's
    p(target | z) >= 0.9: each code must stop at the smallest strength whose moved code lies
    in the target, and a code that never does must move by the largest."""
    level = CodeLevel()
    prior = level.prior
    generator = torch.Generator().manual_seed(0)
    z = torch.cat([prior.sample(12, generator=generator),
                   prior.sample(4, component=0, generator=generator)])
    strengths, target = [0.25, 0.5, 0.75, 1.0], 1

    def lands(codes):
        return prior.component_log_probs(codes).softmax(dim=1)[:, target] >= 0.9

    outputs, chosen = operations.searched_transfer(level, z, target, strengths,
                                                   generation.DecodingConfig(), generator)
    torch.testing.assert_close(level.encode(outputs), chosen, atol=1e-5, rtol=0)
    stops = []
    for row in range(len(z)):
        tried = [operations.transfer_codes(level, z[row : row + 1], target, k)[0]
                 for k in strengths]
        landing = [k for k, code in zip(strengths, tried, strict=True) if lands(code[None])[0]]
        stop = landing[0] if landing else strengths[-1]
        torch.testing.assert_close(chosen[row], tried[strengths.index(stop)])
        stops.append(stop)
    assert len(set(stops)) > 1  # the rows stopped at different strengths: the test sees a search


def test_a_transfer_stops_where_its_text_read_again_lies_in_the_target(tiny_model,
                                                                      monkeypatch):
    """Each output is the text of the first strength whose text the model encodes into the
    target mode, or the largest strength's when none before it does. (The untrained model
    reads few texts as any mode at 0.9: the bar is set where the texts stop at the most
    different strengths.)"""
    torch.manual_seed(0)
    tiny_model = TextWAE(tiny_model.config, tiny_model.tokenizer)
    greedy = generation.DecodingConfig(greedy=True, max_length=6)
    texts, target = toy_texts(16), 2
    strengths = operations.transfer_strengths(tiny_model, 2.0, 4)
    by_strength = [generation.transfer(tiny_model, texts, target, greedy, strength=k, steps=1)[0]
                   for k in strengths]
    z = generation.encode(tiny_model, [t for texts_k in by_strength[:-1] for t in texts_k]).mean
    chances = tiny_model.prior.component_log_probs(z).softmax(dim=1)[:, target]
    chances = chances.view(len(strengths) - 1, len(texts)).T  # (texts, strengths but the last)

    def stops(bar):
        return [row.tolist().index(True) if row.any() else len(strengths) - 1
                for row in chances >= bar]

    bars = [value - 1e-5 for value in chances.unique().tolist()]  # clear of rounding
    bar = max(bars, key=lambda bar: len(set(stops(bar))))
    assert len(set(stops(bar))) > 1  # texts stop at different strengths: the test sees a search
    monkeypatch.setattr("textwae.models.reading.LANDED", bar)
    outputs, _ = generation.transfer(tiny_model, texts, target, greedy, strength=2.0, steps=4)
    assert outputs == [by_strength[stop][row] for row, stop in enumerate(stops(bar))]


def test_a_run_saved_before_the_search_moves_every_code_by_its_own_strength(tiny_model,
                                                                            tmp_path):
    tiny_model.save_pretrained(tmp_path)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text(encoding="utf-8"))
    assert saved["generation"].pop("transfer_steps") == 10
    saved["generation"]["transfer_strength"] = 1.5
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved), encoding="utf-8")
    old = TextWAE.from_pretrained(tmp_path)
    assert operations.transfer_strengths(old) == [1.5]


def test_an_empty_output_never_lies_in_a_mode(tiny_model, monkeypatch):
    level = SentenceLevel(tiny_model)
    monkeypatch.setattr(level, "encode", lambda texts: 1 / 0)
    landed = operations.in_mode(level, ["", "  "], 0)
    assert landed.tolist() == [False, False]  # nothing was encoded


@pytest.mark.parametrize("steps", [0, -2, 2.5, True])
def test_meaningless_strength_steps_are_refused_before_any_output(tiny_model, steps):
    with pytest.raises(ConfigError, match="steps must be a whole number >= 1"):
        generation.iter_transfer(tiny_model, toy_texts(2), 1, generation.DecodingConfig(),
                                 steps=steps)


def test_a_code_already_in_the_target_mode_stays_whatever_the_strength(tiny_model):
    z = tiny_model.prior.sample(6, component=1, generator=torch.Generator().manual_seed(0))
    assert (tiny_model.prior.assign(z) == 1).all()
    torch.testing.assert_close(operations.transfer_codes(tiny_model, z, 1, 3.0), z)


@pytest.mark.parametrize("strength", [-0.5, float("nan"), float("inf")])
def test_a_meaningless_transfer_strength_is_refused_before_any_output(tiny_model, strength):
    with pytest.raises(ConfigError, match="strength"):
        generation.iter_transfer(tiny_model, toy_texts(2), 1, generation.DecodingConfig(),
                                 strength=strength)


def test_without_redraws_a_sample_is_the_decoding_of_the_prior_draw(tiny_model):
    decoding = generation.DecodingConfig(max_length=6)
    texts, modes = generation.sample(tiny_model, 70, decoding, seed=3, redraws=0)
    generator = torch.Generator().manual_seed(3)
    expected, expected_modes = [], []
    for size in (64, 6):  # a chunk's codes are drawn, then decoded
        z = tiny_model.prior.sample(size, generator=generator)
        expected += generation.decode_texts(tiny_model, z, decoding, generator)
        expected_modes += tiny_model.prior.assign(z).tolist()
    assert (texts, modes) == (expected, expected_modes)


def test_a_sample_the_model_reads_as_another_mode_is_drawn_again(tiny_model, monkeypatch):
    """Reading stands in for the model's: a text 'lies in its mode' when its length is even.
    A sample is drawn again while its text is odd, up to `redraws` times, from its mode."""
    read = []

    def even(level, texts, modes):
        read.append(modes.tolist())
        return torch.tensor([len(text) % 2 == 0 for text in texts], dtype=torch.bool)

    decoding = generation.DecodingConfig(max_length=6)
    kept = generation.sample(tiny_model, 40, decoding, mode=2, seed=1, redraws=0)[0]
    monkeypatch.setattr(operations, "reads_as", lambda *args: torch.ones(40, dtype=torch.bool))
    assert generation.sample(tiny_model, 40, decoding, mode=2, seed=1, redraws=4)[0] == kept
    monkeypatch.setattr(operations, "reads_as", even)
    texts, modes = generation.sample(tiny_model, 40, decoding, mode=2, seed=1, redraws=8)
    odd_before = sum(len(text) % 2 for text in kept)
    assert odd_before >= 5  # the stand-in rejects enough draws for the test to see redraws
    assert sum(len(text) % 2 for text in texts) < odd_before / 4
    assert set(modes) == {2} and {mode for modes in read for mode in modes} == {2}
    assert [t for t, k in zip(texts, kept, strict=True) if len(k) % 2 == 0] == [
        k for k in kept if len(k) % 2 == 0]  # a text that reads as its mode is kept


@pytest.mark.parametrize("redraws", [-1, 1.5, True])
def test_meaningless_redraws_are_refused_at_the_call(tiny_model, redraws):
    with pytest.raises(ConfigError, match="redraws must be a whole number >= 0"):
        generation.iter_sample(tiny_model, 3, generation.DecodingConfig(), redraws=redraws)


def test_code_scale_0_samples_the_modes_mean_and_a_bad_scale_is_refused_at_the_call(
        tiny_model, monkeypatch):
    decoded = []
    monkeypatch.setattr(levels, "decode_texts",
                        lambda model, z, decoding, generator: decoded.append(z) or [])
    operations.sample(tiny_model, 3, generation.DecodingConfig(), mode=1, code_scale=0.0,
                      redraws=0)
    torch.testing.assert_close(decoded[0], tiny_model.prior.means[1].expand(3, -1))
    for scale in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="code scale must be a finite number >= 0"):
            operations.iter_sample(tiny_model, 3, generation.DecodingConfig(), code_scale=scale)
    assert len(decoded) == 1  # nothing decoded for a refused scale
