"""docs/results.md is what benchmarks/write_results.py makes of benchmarks/results/*.json."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def write_results():
    sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their helpers as lib.X
    try:
        yield importlib.import_module("write_results")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_results_doc_is_current(write_results):
    written = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    assert written == write_results.render(), (
        "docs/results.md is out of date: run `python benchmarks/write_results.py`")


def test_every_result_file_is_placed(write_results):
    on_disk = {p.name for p in (REPO / "benchmarks" / "results").glob("*.json")}
    shown = {s.file for s in write_results.SECTIONS}
    assert on_disk == shown | write_results.SUPERSEDED
    assert not shown & write_results.SUPERSEDED


def test_a_changed_figure_changes_the_page(write_results, monkeypatch):
    section = next(s for s in write_results.SECTIONS if s.file == "streaming.json")
    load = write_results.load
    result = load(section.file)
    before = write_results.render()
    changed = {**result, "rows": [{**result["rows"][0], "peak_rss_mib": 123456.0},
                                  *result["rows"][1:]]}
    monkeypatch.setattr(write_results, "load",
                        lambda file: changed if file == section.file else load(file))
    after = write_results.render()
    assert "123,456" in after and "123,456" not in before


POINTER = re.compile(r"results\.md(#[\w-]+)?")


def pointers(paths: list[Path]) -> list[tuple[str, str | None]]:
    """(file, anchor) of each mention of results.md in these files; anchor None: no #anchor."""
    found = []
    for path in paths:
        for match in POINTER.finditer(path.read_text(encoding="utf-8")):
            found.append((path.relative_to(REPO).as_posix(), match.group(1)))
    return found


def test_every_pointer_names_a_heading(write_results):
    """Code, configs and the Makefile point into docs/results.md as `docs/results.md#anchor`,
    and the docs link as `results.md#anchor`; every anchor must be one of its headings."""
    headings = {"#" + write_results.anchor(s.title) for s in write_results.SECTIONS}
    in_code = [*sorted(REPO.joinpath("textwae").rglob("*.py")),
               *sorted(REPO.joinpath("configs").glob("*.yaml")), REPO / "Makefile"]
    in_docs = [REPO / "README.md", *sorted(REPO.joinpath("docs").glob("*.md"))]
    code_pointers = pointers(in_code)
    assert code_pointers, "no docs/results.md pointer found: has the form changed?"
    bare = [file for file, anchor in code_pointers if anchor is None]
    assert not bare, f"write docs/results.md#anchor, not a title: {bare}"
    broken = [(file, anchor) for file, anchor in code_pointers + pointers(in_docs)
              if anchor is not None and anchor not in headings]
    assert not broken, f"no such heading in docs/results.md: {broken}"
