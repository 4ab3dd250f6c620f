"""Fixtures of the scripts' end-to-end tests."""

import pytest

from tests.conftest import REPO, toy_texts


@pytest.fixture
def in_repo(monkeypatch):
    """Run in the repository, where train.py finds configs/default.yaml."""
    monkeypatch.chdir(REPO)


@pytest.fixture
def corpus_file(tmp_path):
    """The toy sentences as a plain-text corpus, one per line."""
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(toy_texts()) + "\n", encoding="utf-8")
    return path
