import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import train_tiny_run
from textwae.cli.main import main
from textwae.data.records import Example
from textwae.data.splits import load_splits
from textwae.errors import EvaluationWarning, RunDirectoryError
from textwae.evaluation.mode_report import mode_report
from textwae.evaluation.plots import (
    pca_2d,
    plot_latent_map,
    plot_training_curves,
    write_plots,
)
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import ENCODED_AT_ONCE, codes_of, encode
from textwae.runs.checkpoint import MODEL_FILES
from textwae.runs.metrics_log import read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("plots"))


@pytest.fixture(scope="module")
def model(run) -> TextWAE:
    return TextWAE.from_pretrained(run)


@pytest.mark.slow
def test_write_plots_writes_both_pngs_into_the_run(model, run):
    valid = load_splits(model.config.data)[1]
    written = write_plots(model, run, valid)
    assert written == [run / "latent_map.png", run / "training_curves.png"]
    for path in written:
        assert_png(path)
    assert not list(run.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_latent_map_without_labels(model, tmp_path):
    examples = [Example(text) for text in ["anna went to the park .", "ben went to the cafe ."]]
    assert_png(plot_latent_map(model, examples, tmp_path / "map.png"))


def test_the_latent_map_and_the_mode_report_only_encode(model, tmp_path, monkeypatch):
    """A pretrained decoder makes a decoding pass over every held-out unit cost minutes."""
    examples = [Example(text, label) for text, label in
                [("anna went to the park .", "a"), ("ben went to the cafe .", "b")] * 300]
    monkeypatch.setattr(model.decoder, "forward", lambda *args, **kwargs: pytest.fail("decoded"))
    assert_png(plot_latent_map(model, examples, tmp_path / "map.png"))
    report = mode_report(model, examples, nearest=1)
    assert sum(sum(mode["labels"].values()) for mode in report) == len(examples)


def test_codes_of_many_texts_are_their_posterior_means_in_order(model):
    texts = [f"anna went to the park {i} times ." for i in range(ENCODED_AT_ONCE + 5)]
    codes = codes_of(model, texts)
    assert codes.shape == (len(texts), model.config.model.latent_dim)
    for i in (0, ENCODED_AT_ONCE - 1, ENCODED_AT_ONCE + 4):
        torch.testing.assert_close(codes[i], encode(model, [texts[i]]).mean[0],
                                   atol=1e-5, rtol=1e-4)


def test_a_run_without_metrics_gets_only_the_latent_map(model, run, tmp_path):
    for name in MODEL_FILES:
        shutil.copy(run / name, tmp_path / name)
    with pytest.warns(EvaluationWarning, match="no training curves"):
        written = write_plots(model, tmp_path, [Example("anna went to the park .")] * 2)
    assert written == [tmp_path / "latent_map.png"]


def test_pca_projects_on_the_codes_main_axes():
    t = torch.linspace(-1, 1, 20)
    codes = torch.stack([3 * t, torch.zeros(20), 0.1 * t.flip(0) ** 2, torch.ones(20)], dim=1)
    xy, means = pca_2d(codes, torch.tensor([[3.0, 0.0, 0.0, 1.0]]))
    assert xy.shape == (20, 2) and means.shape == (1, 2)
    assert torch.allclose(xy[:, 0].abs(), (3 * t).abs(), atol=1e-4)  # the first axis is x
    one_dim = pca_2d(t[:, None])[0]
    assert one_dim.shape == (20, 2) and torch.all(one_dim[:, 1] == 0)


def test_metrics_of_a_resumed_run_keep_the_last_record_of_a_step(tmp_path):
    records = [{"step": 1, "split": "train", "loss": 5.0, "recon": 4.0, "reg": 0.1},
               {"step": 2, "split": "train", "loss": 4.0, "recon": 3.0, "reg": 0.1},
               {"step": 2, "split": "valid", "loss": 4.5, "recon": 3.5, "mmd": 0.1},
               {"step": 2, "split": "train", "loss": 3.9, "recon": 2.9, "reg": 0.1}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    by_split = read_metrics(path)
    assert [r["loss"] for r in by_split["train"]] == [5.0, 3.9]
    assert [r["step"] for r in by_split["valid"]] == [2]
    assert_png(plot_training_curves(path, tmp_path / "curves.png"))


def test_unreadable_metrics_are_a_run_directory_error(tmp_path):
    with pytest.raises(RunDirectoryError, match="cannot read"):
        read_metrics(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"step": 1\n', encoding="utf-8")
    with pytest.raises(RunDirectoryError, match="line 1"):
        read_metrics(tmp_path / "bad.jsonl")


@pytest.mark.slow
def test_plot_command_defaults_to_the_runs_validation_data(run, capsys):
    (run / "latent_map.png").unlink(missing_ok=True)
    main(["plot", "--model", str(run)])
    printed = capsys.readouterr().out.split()
    assert printed == [str(run / "latent_map.png"), str(run / "training_curves.png")]
    assert_png(run / "latent_map.png")


@pytest.mark.slow
def test_plot_command_reads_data_and_reports_user_errors(run, tmp_path, capsys):
    data = tmp_path / "held_out.txt"
    data.write_text("anna went to the park .\nben went to the cafe .\n", encoding="utf-8")
    main(["plot", "--model", str(run), "--data", str(data), "--label-field", ""])
    assert_png(run / "latent_map.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", "--model", str(run), "--data", str(tmp_path / "missing.jsonl")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error:")
