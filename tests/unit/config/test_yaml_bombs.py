"""Hostile YAML (issue 36, item 1): alias bombs, self-reference, deep nesting and oversized
files are refused with one line before any object is built; benign aliases still load."""

import re
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from textwae.config import loading
from textwae.config.loading import YAMLBombError, load_config, parse_overrides, parse_yaml
from textwae.errors import ConfigError, RunDirectoryError
from textwae.runs.checkpoint import NAMES_FILE
from textwae.text.names import Names

QUICK = 5.0  # seconds a refusal may take: an unbounded expansion takes minutes, then memory


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A flow list of `levels` lists, each `width` aliases of the one before: width**levels
    items once expanded, in a few hundred bytes."""
    items = [f"&a0 [{', '.join(['lol'] * width)}]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return f"[{', '.join(items)}]"


def test_an_alias_bomb_is_refused_quickly_before_anything_is_built():
    start = time.monotonic()
    with pytest.raises(YAMLBombError, match="aliases expand it beyond"):
        parse_yaml(alias_bomb())
    assert time.monotonic() - start < QUICK


def test_a_merge_key_bomb_is_refused():
    lines = ["a0: &a0 {k: v}"] + [
        f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}], k{i}: v}}" for i in range(1, 10)]
    with pytest.raises(YAMLBombError):
        parse_yaml("\n".join(lines))


def test_a_self_referring_alias_and_deep_nesting_are_refused():
    with pytest.raises(YAMLBombError, match="refers to a node that holds it"):
        parse_yaml("&a [x, *a]")
    with pytest.raises(YAMLBombError, match="nests collections too deeply"):
        parse_yaml("[" * 5000 + "]" * 5000)


def test_benign_aliases_still_load():
    assert parse_yaml("a: &x [1, 2]\nb: *x\nc: {<<: {k: v}, j: w}") == {
        "a": [1, 2], "b": [1, 2], "c": {"k": "v", "j": "w"}}


def test_the_bound_counts_the_expansion_not_the_text(monkeypatch):
    monkeypatch.setattr(loading, "MAX_YAML_EXPANSION", 400)
    parse_yaml(alias_bomb(levels=1))  # 1 + 37 ("lol" x 9) + 334 (9 aliases of those 37)
    shorter = alias_bomb(levels=2)  # adds 9 aliases of those 334
    assert len(shorter) < 400
    with pytest.raises(YAMLBombError):
        parse_yaml(shorter)


def test_a_config_file_bomb_and_an_override_bomb_are_config_errors(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(f"prior:\n  labels: {alias_bomb()}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"config {path} is refused: its aliases")):
        load_config(path)
    with pytest.raises(ConfigError, match=r"override 'prior\.labels=.*' is refused: its aliases"):
        parse_overrides([f"prior.labels={alias_bomb()}"])


def test_an_oversized_config_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text("train:\n  max_steps: 5\n" + "#" * 200 + "\n", encoding="utf-8")
    load_config(path)  # under the cap: read
    monkeypatch.setattr(loading, "MAX_YAML_BYTES", 100)
    with pytest.raises(ConfigError, match=re.escape(f"config {path} is larger than 100 bytes")):
        load_config(path)


def test_an_endless_config_file_is_refused():
    with pytest.raises(ConfigError, match="larger than"):
        load_config("/dev/zero")


def test_a_names_table_bomb_in_a_run_directory_is_refused(tmp_path):
    path = tmp_path / NAMES_FILE
    path.write_text(f"Anna: {alias_bomb()}\n", encoding="utf-8")
    with pytest.raises(RunDirectoryError, match="aliases expand it"):
        Names.load(path)


@pytest.mark.slow
def test_the_train_command_refuses_a_bomb_with_one_line_and_exit_2(tmp_path):
    config = tmp_path / "bomb.yaml"
    config.write_text(f"prior:\n  labels: {alias_bomb()}\n", encoding="utf-8")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "textwae", "train", "--config", str(config),
                           "--out", str(tmp_path / "run")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert time.monotonic() - start < 60  # the interpreter and torch's import, not the bomb
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"error: config {config} is refused: its aliases expand it beyond "
                           f"{loading.MAX_YAML_EXPANSION:,} characters (an alias bomb?)\n")
    assert not (tmp_path / "run").exists()
