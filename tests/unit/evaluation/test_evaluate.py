import functools
import json
import math
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY, toy_texts, train_tiny_run, write_labelled
from textwae import generation
from textwae.cli.main import main
from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.data.splits import load_splits
from textwae.errors import EvaluationWarning
from textwae.evaluation import evaluate as evaluation
from textwae.evaluation.evaluate import label_components
from textwae.evaluation.judges import embedding_judge_available
from textwae.evaluation.teacher_forced import (
    MAX_MMD_CODES,
    forced_pass,
    prior_mmd,
    teacher_forced,
)
from textwae.models.autoencoder import TextWAE
from textwae.training.pipeline import train

# the LM judge has its own tests (test_lm_judge.py): off here, where each test reads other keys
evaluate = functools.partial(evaluation.evaluate, lm_judge=False)

# the MiniLM embedding judge reports beside the others where the minilm extra is installed
EMBEDDING_KEYS = {"embedding_judge"} if embedding_judge_available() else set()
BASE_KEYS = {"bleu", "bleu_signature", "recon_perplexity", "code_gain", "mmd", "active_units",
             "self_bleu", "distinct_1", "distinct_2", "interpolation"} | EMBEDDING_KEYS
LABEL_KEYS = {"purity", "nmi", "mode_accuracy"}
FLUENCY_KEYS = {"judge_perplexity", "samples", "interpolation_midpoints"}  # need training texts
NEW_KEYS = FLUENCY_KEYS | {"transfer"}  # what the judges say of generated text


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("evaluation"))


@pytest.fixture(scope="module")
def model(run) -> TextWAE:
    return TextWAE.from_pretrained(run)


@pytest.fixture(scope="module")
def splits(model) -> tuple[list[Example], list[Example]]:
    return load_splits(model.config.data)


def numbers(tree):
    """Every number in a nested JSON-like value."""
    if isinstance(tree, dict):
        return [n for value in tree.values() for n in numbers(value)]
    if isinstance(tree, list):
        return [n for value in tree for n in numbers(value)]
    return [tree] if isinstance(tree, int | float) and not isinstance(tree, bool) else []


@pytest.mark.slow
def test_evaluate_returns_every_metric_as_a_finite_number(model, splits):
    train_examples, valid = splits
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        result = evaluate(model, valid, train_examples, n_samples=20)
    assert model.training  # the caller's mode is restored
    model.eval()
    assert set(result) == BASE_KEYS | LABEL_KEYS | NEW_KEYS
    assert all(math.isfinite(n) for n in numbers(result))
    json.dumps(result, allow_nan=False)
    assert 0 <= result["bleu"] <= 100 and result["bleu_signature"].startswith("nrefs:1")
    assert result["recon_perplexity"] >= 1
    assert 0 <= result["active_units"] <= model.config.model.latent_dim
    assert 0 <= result["distinct_1"] <= 1 and 0 <= result["distinct_2"] <= 1
    assert 0 <= result["purity"] <= 1 and 0 <= result["nmi"] <= 1
    assert set(result["mode_accuracy"]) <= {ex.label for ex in train_examples}
    assert all(0 <= share <= 1 for share in result["mode_accuracy"].values())
    path = result["interpolation"]
    assert len(path["outputs"]) == len(path["bleu_to_start"]) == 7
    assert (path["start"], path["end"]) == (valid[0].text, valid[1].text)


def test_without_labels_the_label_metrics_are_left_out_with_a_warning(model, splits):
    unlabelled = [Example(ex.text) for ex in splits[1]]
    with pytest.warns(EvaluationWarning, match="no labels"):
        result = evaluate(model, unlabelled, splits[0], n_samples=4)
    assert set(result) == BASE_KEYS | FLUENCY_KEYS
    assert set(result["samples"]["per_mode"]) == {"0", "1", "2"}  # every mode, no accuracy
    assert all(set(entry) == {"clean_rate", "judge_ppl_ratio", "copy_rate"}
               for entry in result["samples"]["per_mode"].values())


def test_without_judge_data_mode_accuracy_is_left_out(model, splits):
    with pytest.warns(EvaluationWarning) as caught:
        result = evaluate(model, splits[1], None, n_samples=4)
    assert set(result) == BASE_KEYS | {"purity", "nmi"}
    messages = " ".join(str(w.message) for w in caught)
    assert "mode_accuracy and transfer need" in messages
    assert "clean_rate, copy_rate, judge_perplexity and judge_ppl_ratio need" in messages


def test_one_example_leaves_out_what_needs_two(model, splits):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(model, [Example(splits[1][0].text)], n_samples=2)
    assert set(result) == BASE_KEYS - {"mmd", "active_units", "interpolation"}
    messages = " ".join(str(w.message) for w in caught)
    assert "mmd and active_units need at least 2" in messages
    assert "interpolation needs 2" in messages


def test_the_models_own_label_map_replaces_the_majority_vote(model, splits, monkeypatch):
    monkeypatch.setattr(model, "label_map", lambda: {"0": 2, "1": 0, "2": 1}, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(model, splits[1], splits[0], n_samples=4)
    assert not [w for w in caught if "mode_map" in str(w.message)]
    assert set(result["mode_accuracy"]) == {"0", "1", "2"}


def test_without_a_label_map_labels_take_their_majority_component(model, monkeypatch):
    monkeypatch.setattr(model, "label_map", lambda: None, raising=False)
    texts = toy_texts(12, seed=1)
    examples = [Example(text, "a" if i < 6 else "b") for i, text in enumerate(texts)]
    codes = teacher_forced(model, examples).codes
    assigned = model.prior.assign(codes).tolist()
    expected = {label: Counter(assigned[i] for i, ex in enumerate(examples) if ex.label == label)
                .most_common(1)[0][0] for label in ("a", "b")}
    with pytest.warns(EvaluationWarning, match="mode_map") as caught:
        assert label_components(model, [ex.label for ex in examples], assigned) == expected
    assert str(expected) in str(caught[0].message)


def test_teacher_forced_codes_follow_the_examples_order(model, splits):
    valid = splits[1]
    forced = teacher_forced(model, valid)
    expected = generation.encode(model, [ex.text for ex in valid]).mean
    assert torch.allclose(forced.codes, expected, atol=1e-5)
    lengths = [len(ids) - 1 for ids in model.tokenizer.encode_batch([ex.text for ex in valid])]
    assert forced.tokens == sum(lengths)
    assert forced.nll > 0


def test_evaluate_command_prints_and_writes_one_json_object(run, splits, tmp_path, capsys):
    data = write_labelled(tmp_path / "valid.jsonl", splits[1])
    out = tmp_path / "scores" / "eval.json"
    main(["evaluate", "--no-lm-judge", "--model", str(run), "--data", str(data), "--n-samples", "8",
          "--out", str(out)])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert set(result) == BASE_KEYS | LABEL_KEYS | NEW_KEYS
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert "Traceback" not in captured.err


def test_evaluate_command_without_labels(run, splits, tmp_path, capsys):
    data = tmp_path / "valid.txt"
    data.write_text("\n".join(ex.text for ex in splits[1]) + "\n", encoding="utf-8")
    main(["evaluate", "--no-lm-judge", "--model", str(run), "--data", str(data),
          "--label-field", "", "--n-samples", "4"])
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)) == BASE_KEYS | FLUENCY_KEYS
    assert "warning:" in captured.err


@pytest.mark.parametrize("extra", [["--data", "no/such/file.jsonl"],
                                   ["--data", "valid.jsonl", "--n-samples", "0"]])
def test_evaluate_command_user_errors_exit_2(run, extra, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--no-lm-judge", "--model", str(run), *extra])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error:")


def test_evaluate_command_defaults_to_the_runs_validation_split(run, splits, capsys):
    main(["evaluate", "--no-lm-judge", "--model", str(run), "--n-samples", "4"])
    result = json.loads(capsys.readouterr().out)
    held_out = {ex.text for ex in splits[1]}
    assert {result["interpolation"]["start"], result["interpolation"]["end"]} <= held_out


# ----------------------------------------------------------------- what the judges say of text


def test_generated_text_figures_are_grouped_finite_and_on_their_scales(model, splits, tmp_path):
    train_examples, valid = splits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        result = evaluate(model, valid, train_examples, n_samples=6, judge_cache=tmp_path)
    json.dumps(result, allow_nan=False)
    assert all(math.isfinite(n) for n in numbers(result))
    assert result["judge_perplexity"] > 1
    samples = result["samples"]
    assert set(samples) == {"clean_rate", "judge_ppl_ratio", "copy_rate", "per_mode"}
    assert set(samples["per_mode"]) == {str(k) for k in range(model.prior.components)}
    for entry in samples["per_mode"].values():  # the tiny run keeps a label map: one label each
        assert set(entry) == {"clean_rate", "judge_ppl_ratio", "copy_rate", "label", "accuracy"}
        assert entry["accuracy"] == result["mode_accuracy"][entry["label"]]
    midpoints = result["interpolation_midpoints"]
    assert set(midpoints) == {"n_pairs", "clean_rate", "judge_ppl_ratio"}
    assert midpoints["n_pairs"] == min(20, len(valid) * (len(valid) - 1) // 2)
    transfer = result["transfer"]
    assert set(transfer) == {"n", "accuracy", "bleu_to_input", "gmean", "clean_rate",
                             "judge_ppl_ratio"} | (
        {"embedding_accuracy", "embedding_similarity_to_input"} if EMBEDDING_KEYS else set())
    assert transfer["n"] == min(6, len(valid))
    assert transfer["gmean"] == pytest.approx(
        math.sqrt(100 * transfer["accuracy"] * transfer["bleu_to_input"]))
    for group in (samples, *samples["per_mode"].values(), midpoints, transfer):
        assert 0 <= group["clean_rate"] <= 1 and group["judge_ppl_ratio"] > 0
    assert 0 <= transfer["accuracy"] <= 1 and 0 <= transfer["bleu_to_input"] <= 100
    assert len(list(tmp_path.iterdir())) == 1  # the judge, cached


def test_midpoints_are_the_inner_points_of_several_seeded_random_pairs(model, splits,
                                                                        monkeypatch):
    from textwae.evaluation import evaluate as module

    texts = [ex.text for ex in splits[1]]
    codes = teacher_forced(model, splits[1]).codes
    decoded = []
    monkeypatch.setattr(module, "reconstruct_codes",
                        lambda _model, z, *_: decoded.append(z) or [""] * len(z))
    n_pairs, lines = module._midpoints(model, codes, texts, seed=0)
    pairs = module._random_pairs(texts, module.INTERPOLATION_PAIRS, 0)
    inner = module.INTERPOLATION_STEPS - 2
    assert n_pairs == len(pairs) > 1 and len(lines) == n_pairs * inner
    assert len(set(pairs)) == len(pairs) and all(texts[i] != texts[j] for i, j in pairs)
    z = decoded[0].reshape(n_pairs, inner, -1)
    for (i, j), path in zip(pairs, z, strict=True):
        for step, point in enumerate(path, start=1):
            weight = step / (module.INTERPOLATION_STEPS - 1)
            torch.testing.assert_close(point, (1 - weight) * codes[i] + weight * codes[j])
        assert not any(torch.allclose(point, codes[k]) for point in path for k in (i, j))
    assert module._random_pairs(texts, 20, 0) == pairs != module._random_pairs(texts, 20, 1)


def test_transfers_move_each_input_to_another_labels_mode(model, splits, monkeypatch):
    real_transfer = generation.transfer
    calls = []

    def recording(model_, texts, to_mode, decoding, seed=0):
        calls.append((texts, to_mode, decoding))
        return real_transfer(model_, texts, to_mode, decoding, seed)

    monkeypatch.setattr(generation, "transfer", recording)
    valid = splits[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        result = evaluate(model, valid, splits[0], n_samples=5)
    labels_of: dict[str, set[str]] = {}
    for ex in valid:
        labels_of.setdefault(ex.text, set()).add(ex.label)
    mapping = model.label_map()
    assert sum(len(texts) for texts, _, _ in calls) == result["transfer"]["n"] == 5
    for texts, to_mode, decoding in calls:
        assert decoding.greedy
        for text in texts:
            if len(labels_of[text]) == 1:  # a text held out once, with one label
                assert mapping[next(iter(labels_of[text]))] != to_mode


def test_evaluate_command_caches_the_judge_beside_the_run_or_where_told(run, tmp_path, capsys):
    before = sorted(p.name for p in run.iterdir())
    main(["evaluate", "--no-lm-judge", "--model", str(run), "--n-samples", "2", "--judge-cache",
          str(tmp_path / "judges")])
    capsys.readouterr()
    assert [p.suffix for p in (tmp_path / "judges").iterdir()] == [".safetensors"]
    main(["evaluate", "--no-lm-judge", "--model", str(run), "--n-samples", "2"])
    assert len(json.loads(capsys.readouterr().out)["samples"]["per_mode"]) == 3
    assert [p.suffix for p in (run.parent / ".judges").iterdir()] == [".safetensors"]
    assert sorted(p.name for p in run.iterdir()) == before  # nothing inside the run


def test_non_finite_numbers_in_groups_are_left_out_with_a_warning():
    from textwae.evaluation.evaluate import finite_only

    with pytest.warns(EvaluationWarning, match=r"samples\.judge_ppl_ratio is inf"):
        kept = finite_only({"bleu": 1.0, "samples": {"judge_ppl_ratio": math.inf,
                                                      "clean_rate": 0.5}})
    assert kept == {"bleu": 1.0, "samples": {"clean_rate": 0.5}}


def test_code_gain_is_what_the_right_code_saves_over_another_units(corpus, tmp_path):
    config = load_config(TINY, overrides=[f"data.train={corpus}", "train.max_steps=150",
                                          "train.lr=0.01", "train.eval_every=1000",
                                          "train.checkpoint_every=1000"])
    train(config, tmp_path / "run")
    model = TextWAE.from_pretrained(tmp_path / "run")
    unseen = model.tokenize(toy_texts(40, seed=1))
    assert forced_pass(model, unseen).code_gain > 0.1  # 150 steps: the decoder reads z
    same = model.tokenize(toy_texts(1, seed=1) * 8)  # every code the same: nothing to gain
    assert forced_pass(model, same).code_gain == pytest.approx(0.0, abs=1e-6)


def test_a_limited_validation_reads_a_random_subset_not_the_shortest_units(tiny_model):
    texts = [" ".join(["word"] * n) for n in range(1, 41)]  # unit i has i + 1 words
    forced = forced_pass(tiny_model, tiny_model.tokenize(texts), max_batches=2, seed=0)
    batch_size = tiny_model.config.train.batch_size
    assert len(forced.seen) == len(forced.codes) == 2 * batch_size
    assert int(forced.seen.max()) >= 2 * batch_size  # beyond the 16 shortest units
    again = forced_pass(tiny_model, tiny_model.tokenize(texts), max_batches=2, seed=0)
    assert torch.equal(forced.seen, again.seen) and forced.nll == again.nll


def test_the_prior_mmd_reads_codes_of_every_mode_whatever_their_order(tiny_model):
    """Codes come in corpus order, and a corpus may hold one label per file: the MMD must not
    be measured on the first codes alone, which may all lie in one mode."""
    generator = torch.Generator().manual_seed(1)
    codes = tiny_model.prior.sample(3 * MAX_MMD_CODES, generator=generator)
    by_mode = codes[tiny_model.prior.component_log_probs(codes).argmax(dim=1).argsort()]
    prior, cfg = tiny_model.prior, tiny_model.config.regularizer
    one_mode = prior_mmd(by_mode[:MAX_MMD_CODES], prior, cfg, seed=0)
    every_mode = prior_mmd(by_mode, prior, cfg, seed=0)
    assert every_mode < 0.01 < one_mode  # prior samples themselves match the prior
    assert prior_mmd(by_mode, prior, cfg, seed=0) == every_mode  # the subset is seeded


def test_thin_directions_is_reported_given_ten_examples_per_latent_dimension(model, splits):
    train_examples, valid = splits
    enough = (train_examples + valid)[: 10 * model.config.model.latent_dim]
    result = evaluate(model, enough, n_samples=2)
    assert 0 <= result["thin_directions"] <= 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(model, enough[:-1], n_samples=2)
    assert "thin_directions" not in result
    assert "thin_directions needs 10 examples per latent dimension" in " ".join(
        str(w.message) for w in caught)
