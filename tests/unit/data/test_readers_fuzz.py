"""Data readers fed arbitrary bytes: units with text, or a DataError/ConfigError, nothing else."""

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from textwae.config.schema import DataConfig
from textwae.data.records import Example
from textwae.data.splits import load_splits, read_examples
from textwae.errors import ConfigError, DataError

COLUMNS = st.sampled_from(["text", "label", "body", "", "Text", "text "]) | st.text(max_size=4)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(COLUMNS, inner, max_size=3),
    max_leaves=6)
# \u escapes near and inside the surrogate range: a lone half of a pair parses, but is no text
ESCAPED = st.lists(st.integers(0xD780, 0xE000).map("\\u{:04x}".format)
                   | st.sampled_from(["a", " ", "\\n", "\\u0000"]), max_size=4)
ESCAPED_ROWS = st.builds('{{"text": "{}", "label": "{}"}}'.format, ESCAPED.map("".join),
                         ESCAPED.map("".join))
DEEP = st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth)
ROWS = st.dictionaries(COLUMNS, JSON_VALUES, max_size=4).map(json.dumps) | ESCAPED_ROWS
JSON_LINES = st.lists(ROWS | st.just(""), max_size=6).map("\n".join) | st.lists(
    ROWS | JSON_VALUES.map(json.dumps) | DEEP | st.text(max_size=20), max_size=6).map("\n".join)
# cells full of what CSV quoting and line splitting trip over
CELLS = st.text(alphabet=st.sampled_from('ab ,\t"\'\n\r\x00\ufeff\u2028é.'), max_size=8)
TABLES = st.builds(lambda header, rows, sep: "\n".join(sep.join(row) for row in [header, *rows]),
                   st.lists(COLUMNS | CELLS, min_size=1, max_size=3),
                   st.lists(st.lists(CELLS, max_size=4), max_size=5), st.sampled_from([",", "\t"]))
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=120)
BOMS = st.sampled_from([b"", b"\xef\xbb\xbf"])


def contents(structured: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Raw bytes, any text, or text shaped like the format, as UTF-8 after an optional BOM."""
    def utf8(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
        return st.builds(lambda bom, chars: bom + chars.encode("utf-8"), BOMS, text)

    return st.one_of(st.binary(max_size=200), utf8(TEXT), utf8(structured))


SETTINGS = st.fixed_dictionaries({
    "text_field": st.sampled_from(["text", "body", ["text", "body"]]),
    "label_field": st.sampled_from([None, "label", "text"]),
    "encoding_errors": st.sampled_from(["strict", "replace"]),
    "unit": st.sampled_from(["story", "sentence"]),
})
FORMATS = {".txt": TEXT, ".jsonl": JSON_LINES, ".csv": TABLES, ".tsv": TABLES}


@pytest.mark.parametrize("suffix", list(FORMATS))
def test_readers_return_units_with_text_or_raise_a_user_error(tmp_path, suffix):
    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=contents(FORMATS[suffix]), options=SETTINGS)
    @example(data=b"text\n\x00\r\x01", options={  # two stories: one held out, one left
        "text_field": "text", "label_field": None, "encoding_errors": "strict", "unit": "story"})
    def check(data: bytes, options: dict) -> None:
        path = tmp_path / f"corpus{suffix}"
        path.write_bytes(data)
        cfg = DataConfig(train=str(path), **options)
        try:
            examples = read_examples(str(path), cfg)
        except (DataError, ConfigError):
            return
        assert examples
        for unit in examples:
            assert isinstance(unit, Example)
            assert unit.text and unit.text == unit.text.strip()
            unit.text.encode("utf-8")  # valid Unicode: the tokenizer needs it
            assert unit.label is None or unit.label == unit.label.strip() != ""
        try:  # what training reads: the same records, split into train and validation
            train, valid = load_splits(dataclasses.replace(cfg, valid=None))
        except DataError as error:
            distinct = {example.text for example in examples}  # copies share a side
            # two distinct texts: one is held out, and one unit alone cannot train
            left_one = len(distinct) == 2 and "the training split holds 1 unit" in str(error)
            assert len(distinct) < 2 or left_one or options["unit"] == "sentence"
            return
        assert train and valid

    check()


def test_a_lone_surrogate_escape_is_named_or_replaced(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "caf\\ud800e \\ud83d\\ude00"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: the escape \\ud800 is half a surrogate pair"):
        read_examples(str(path), DataConfig())
    examples = read_examples(str(path), DataConfig(encoding_errors="replace"))
    assert examples[1].text.startswith("caf\ufffd") and examples[1].text.endswith("\U0001f600")


def test_json_nested_too_deeply_is_a_data_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: JSON nested too deeply"):
        read_examples(str(path), DataConfig())
