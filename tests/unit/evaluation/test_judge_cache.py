"""The n-gram judge's cache (issue 36.9): verified by a hash of its content, so an edited
count or vocabulary is refitted with a warning, never trusted; and optional, so a folder that
cannot be written is a warning and the judge is still given."""

import errno
import json

import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from tests.conftest import toy_texts
from textwae.errors import EvaluationWarning
from textwae.evaluation import judges
from textwae.evaluation.judges import NgramJudge, NgramSettings, corpus_key, load_or_fit

TEXTS = toy_texts(40)


def cached_file(cache_dir):
    return cache_dir / f"ngram-{corpus_key(TEXTS, NgramSettings())}.safetensors"


def edit_counts(arrays, metadata):
    arrays["order_3"][0, -1] = 0  # a count of zero: log(0) if it were trusted
    return arrays, metadata


def edit_vocabulary(arrays, metadata):
    vocabulary = json.loads(metadata["vocabulary"])
    vocabulary[0], vocabulary[-1] = vocabulary[-1], vocabulary[0]  # same words, other ids
    return arrays, {**metadata, "vocabulary": json.dumps(vocabulary)}


@pytest.mark.parametrize("edit", [edit_counts, edit_vocabulary])
def test_an_edited_cache_file_is_refused_and_fitted_again(tmp_path, edit):
    path = cached_file(tmp_path)
    load_or_fit(TEXTS, cache_dir=tmp_path)
    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata()
        arrays = {name: handle.get_tensor(name).copy() for name in handle.keys()}  # noqa: SIM118
    edited, edited_metadata = edit(arrays, metadata)  # the key and the hash kept as they were
    save_file(edited, str(path), metadata=edited_metadata)
    with pytest.raises(ValueError, match="was changed"):
        NgramJudge.load(path, metadata["key"])
    with pytest.warns(EvaluationWarning, match="was changed"):
        judge = load_or_fit(TEXTS, cache_dir=tmp_path)
    fitted = NgramJudge.fit(TEXTS)
    assert judge.tables == fitted.tables and judge.vocabulary == fitted.vocabulary
    assert NgramJudge.load(path, metadata["key"]).tables == fitted.tables  # replaced


def test_a_cache_folder_that_cannot_be_made_is_a_warning(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.warns(EvaluationWarning, match="cannot keep the n-gram judge"):
        judge = load_or_fit(TEXTS, cache_dir=blocker / ".judges")
    assert judge.tables == NgramJudge.fit(TEXTS).tables
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_a_read_only_cache_folder_is_a_warning(tmp_path, monkeypatch):
    def read_only(path, write):  # what a read-only folder answers, even for root
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(judges, "atomic_write", read_only)
    with pytest.warns(EvaluationWarning, match=r"\(Permission denied\).*--judge-cache"):
        judge = load_or_fit(TEXTS, cache_dir=tmp_path)
    assert judge.tables == NgramJudge.fit(TEXTS).tables
    assert list(tmp_path.iterdir()) == []
