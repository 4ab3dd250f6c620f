"""Bad input gets a short message on stderr, exit status 2, no traceback, and loses nothing.

Most cases call the scripts' entry points in this process (`train_main`, `generate_main`: what
train.py and generate.py run), which costs milliseconds instead of seconds per case; an
exception that escaped them would fail the test with its traceback. tests/e2e/test_cli.py runs the
scripts themselves for the cases it covers (unknown override, missing data file, missing or
truncated run files, --mode out of range, ...), and one case here does too.
"""

import shutil

import pytest

from tests.conftest import TINY_OVERRIDES, run, toy_texts
from textwae.cli.main import generate_main, train_main
from textwae.config.loading import load_config
from textwae.models.autoencoder import TextWAE
from textwae.text.tokenizers import Tokenizer

# every test here runs scripts or trains, in the repository (in_repo)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("in_repo")]



def fails(capfd, main, *args) -> str:
    """Call a script's entry point; it must exit 2 with a one-line message. Returns stderr."""
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in args])
    assert exit_.value.code == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def snapshot(run_dir) -> dict[str, bytes]:
    return {path.relative_to(run_dir).as_posix(): path.read_bytes()
            for path in sorted(run_dir.rglob("*")) if path.is_file()}


def copy_of(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "run")


# -- data -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, overrides, message", [
    ("empty.txt", b"", [], "the file is empty"),
    ("blank.txt", b"\n  \n\t\n\n", [], "holds only whitespace"),
    ("rows.jsonl", b'{"body": "anna went home .", "label": "a"}\n', [],
     "no text column text (data.text_field); columns present: body, label"),
    ("rows.csv", b"text,label\nanna went home .,a\n", ["data.label_field=topic"],
     "no label column topic (data.label_field); columns present: text, label"),
])
def test_bad_data_is_named_and_no_run_directory_is_made(tmp_path, capfd, name, content,
                                                        overrides, message):
    data, out = tmp_path / name, tmp_path / "run"
    data.write_bytes(content)
    err = fails(capfd, train_main, "--out", out, f"data.train={data}", *TINY_OVERRIDES,
                *overrides)
    assert str(data) in err and message in err
    assert not out.exists()


def test_train_py_names_the_file_and_line_of_a_non_utf8_byte(tmp_path):
    data = tmp_path / "latin1.txt"
    data.write_bytes(b"anna went home .\ncaf\xe9 au lait .\n")
    result = run("train.py", "--out", tmp_path / "run", f"data.train={data}", *TINY_OVERRIDES)
    assert result.returncode == 2
    assert f"{data}: line 2: not valid UTF-8" in result.stderr
    assert "data.encoding_errors=replace" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_encoding_errors_replace_reads_on_and_trains(tmp_path, capfd):
    data, out = tmp_path / "latin1.txt", tmp_path / "run"
    data.write_bytes("\n".join(toy_texts()).encode() + b"\nthe caf\xe9 was calm .\n")
    train_main(["--out", str(out), f"data.train={data}", "data.encoding_errors=replace",
                *TINY_OVERRIDES, "train.max_steps=1", "train.eval_every=1"])
    assert '"run"' in capfd.readouterr().out
    TextWAE.from_pretrained(out)


# -- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    (["train.max_steps=many"], "train.max_steps: 'many' is not a valid int"),
    (["train.batch_size=[8]"], "train.batch_size"),
    (["regularizer.weight=.nan"], "regularizer.weight"),  # else every loss is NaN
    (["train.lr=.inf"], "train.lr"),  # else the weights are NaN after one step
    (["tokenizer.vocab_size=5"], "cannot train the tokenizer (tokenizer.vocab_size=5)"),
    # the toy corpus writes its names in lower case
    (["data.mask_names=true"], "data.mask_names: the training split uses no census first name"),
    (["data.mask_names=sometimes"], "data.mask_names"),
])
def test_a_wrong_value_is_named_before_anything_is_written(corpus, tmp_path, capfd, overrides,
                                                           message):
    err = fails(capfd, train_main, "--out", tmp_path / "run", f"data.train={corpus}",
                *TINY_OVERRIDES, *overrides)
    assert message in err
    assert not (tmp_path / "run").exists()


def test_an_unknown_key_in_an_experiment_yaml_gets_a_suggestion(tmp_path, capfd):
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text("model:\n  latent_dims: 8\n", encoding="utf-8")
    err = fails(capfd, train_main, "--config", experiment, "--out", tmp_path / "run")
    assert "did you mean 'model.latent_dim'" in err


# -- run directories --------------------------------------------------------------------------

def _foreign_tokenizer(run_dir):
    config = load_config(run_dir / "config.yaml")
    texts = [text.upper() for text in toy_texts()]
    Tokenizer.train(texts, config.tokenizer).save(run_dir / "tokenizer.model")


def _rename_key(run_dir):
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("max_steps:", "max_stepz:"))


BOTH, RESUME = ("generate", "resume"), ("resume",)


@pytest.mark.parametrize("corrupt, commands, message", [
    (lambda run: (run / "tokenizer.model").write_bytes(b"\x00garbage"), BOTH,
     "tokenizer.model is not a SentencePiece model"),
    (lambda run: (run / "config.yaml").write_text("model: [unclosed\n"), BOTH,
     "config.yaml is not valid YAML"),
    (_rename_key, BOTH, "did you mean 'train.max_steps'"),
    (_foreign_tokenizer, BOTH, "tokenizer.model is not the tokenizer"),
    (lambda run: (run / "model.safetensors").write_bytes(
        (run / "model.safetensors").read_bytes()[:100]), RESUME, "model.safetensors is corrupt"),
    (lambda run: (run / "state" / "trainer.safetensors").write_bytes(
        (run / "state" / "trainer.safetensors").read_bytes()[:-50]), RESUME,
     "trainer.safetensors is corrupt"),
    (lambda run: (run / "state" / "trainer.safetensors").unlink(), RESUME, "cannot resume"),
], ids=["garbage-tokenizer", "config-not-yaml", "config-unknown-key", "foreign-tokenizer",
        "truncated-weights", "truncated-state", "missing-state"])
def test_a_broken_run_directory_is_refused_and_left_as_it_is(trained_run, tmp_path, capfd,
                                                             corrupt, commands, message):
    broken = copy_of(trained_run, tmp_path)
    corrupt(broken)
    before = snapshot(broken)
    calls = {"generate": (generate_main, "sample", "--model", broken, "--n", 1),
             "resume": (train_main, "--out", broken, "--resume", "train.max_steps=6")}
    for command in commands:
        assert message in fails(capfd, *calls[command]), command
    assert snapshot(broken) == before


def test_resume_refuses_a_model_that_does_not_fit_its_state(trained_run, tmp_path, capfd):
    resumed = copy_of(trained_run, tmp_path)
    before = snapshot(resumed)
    err = fails(capfd, train_main, "--out", resumed, "--resume", "model.hidden_size=32")
    assert "--resume cannot change model.hidden_size (24 -> 32)" in err
    assert "train a new run with it into another --out" in err
    assert snapshot(resumed) == before


def test_a_nan_loss_stops_with_a_message_and_keeps_the_run(trained_run, tmp_path, capfd,
                                                           monkeypatch):
    resumed = copy_of(trained_run, tmp_path)
    before = snapshot(resumed)
    forward = TextWAE.forward

    def poisoned(self, batch, components=None):
        output = forward(self, batch, components)
        output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(TextWAE, "forward", poisoned)
    err = fails(capfd, train_main, "--out", resumed, "--resume", "train.max_steps=6")
    assert "the loss became nan at step 4" in err and "keeps its last saved state" in err
    assert snapshot(resumed) == before


# -- generation -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["encode", ""], "text 1 is empty"),
    (["encode", "anna went .", " "], "text 2 is empty"),
    (["encode", "--input", "EMPTY"], "give texts to encode"),
    (["transfer", "--to", "9", "anna went ."], "mode 9 is out of range"),
    (["transfer", "--to", "happy", "anna went ."], "neither a label nor a component index"),
    (["transfer", "--to", "1", "--strength-steps", "0", "anna went ."],
     "transfer strength steps must be a whole number >= 1, got 0"),
    (["interpolate", "anna went .", "ben went .", "--steps", "1"],
     "interpolation steps (the two ends included) must be a whole number >= 2, got 1"),
    (["modes", "--code-scale", "-1"], "code scale must be a finite number >= 0, got -1.0"),
])
def test_generate_refuses_what_it_cannot_use(trained_run, tmp_path, capfd, args, message):
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    args = [str(tmp_path / "empty.txt") if arg == "EMPTY" else arg for arg in args]
    assert message in fails(capfd, generate_main, *args, "--model", trained_run)
