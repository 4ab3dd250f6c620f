"""Records of a corpus: plain text, JSON Lines, CSV/TSV files or a `datasets` source.

Each record (a line, a blank-line-separated block or a row) becomes an `Example` with its
optional label; `textwae.data.units` then makes units of records.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import logging
import os
import re
import socket
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textwae.config.schema import DataConfig
from textwae.errors import DataError


@dataclass(frozen=True)
class Example:
    text: str
    label: str | None = None
    sentence_labels: tuple[str | None, ...] | None = None  # one per sentence, if the data
    #   has them (data.sentence_label_field); sentence units take them in place of `label`


FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}
# A missing path with one of these suffixes is a missing file, never a `datasets` name.
FILE_SUFFIXES = {".txt", ".text", *FORMAT_BY_SUFFIX}
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
# `datasets` builder (and its options) that reads each local file format, for format "hf".
HF_BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "text": ("text", {}),
    "jsonl": ("json", {}),
    "csv": ("csv", {}),
    "tsv": ("csv", {"delimiter": "\t"}),
}


Row = tuple[str, dict[str, Any]]  # where a row is (for messages: "file: line 3"), its cells


def normalize_whitespace(text: str) -> str:
    return " ".join(text.split())


def read_records(source: str | list[str], cfg: DataConfig) -> list[Example]:
    """Whole records (stories, lines or rows) of every source, in order."""
    records = []
    for item in sources(source, cfg):
        if item.file is not None:
            records.extend(read_file(item.file, cfg))
        else:
            records.extend(_load_hf(item, cfg))
    return records


@dataclass(frozen=True)
class Source:
    """One readable part of a data source: a local file this module reads, or the arguments
    `datasets.load_dataset` opens (a hub name, a directory, or a file by its builder)."""

    where: str  # what messages name
    file: Path | None = None
    load_args: tuple[str, dict[str, Any]] = ("", {})
    on_hub: bool = False  # a `datasets` name, which `datasets` fetches from the Hub


def sources(source: str | list[str], cfg: DataConfig) -> list[Source]:
    """The parts that `source` (a path, glob, list of those, or `datasets` name) names."""
    items = [source] if isinstance(source, str) else list(source)
    if not items:
        raise DataError("no data source given")
    found = []
    for item in items:
        local = _has_magic(item) or os.path.exists(os.path.expanduser(item))
        if (cfg.format == "hf" and not local) or (cfg.format == "auto"
                                                   and _looks_like_hub_name(item)):
            found.append(Source(item, load_args=(item, {"split": cfg.hf_split}), on_hub=True))
        elif cfg.format != "hf":
            found.extend(Source(str(path), file=path) for path in _expand(item, files_only=True))
        else:  # local files through `datasets`: a directory as a dataset, a file by its builder
            for path in _expand(item, files_only=False):
                builder, options = HF_BUILDERS[_file_format(path, cfg)]
                found.append(Source(str(path), load_args=(
                    (str(path), {"split": cfg.hf_split}) if path.is_dir() else
                    (builder, {"data_files": str(path), "split": "train", **options}))))
    return found


def _has_magic(source: str) -> bool:
    return any(char in source for char in "*?[")


def _looks_like_hub_name(source: str) -> bool:
    """A `datasets` name: not a local path or glob, and no data-file suffix ("owner/name")."""
    return (
        not _has_magic(source)
        and not os.path.exists(os.path.expanduser(source))
        and HUB_NAME.fullmatch(source) is not None
        and Path(source).suffix.lower() not in FILE_SUFFIXES
    )


def _expand(source: str, files_only: bool) -> list[Path]:
    """The sorted, de-duplicated paths a path or glob names; a DataError if there are none."""
    pattern = os.path.expanduser(source)
    if not _has_magic(pattern):
        path = Path(pattern)
        if not path.exists():
            raise DataError(f"{source}: no such file")
        if files_only and not path.is_file():
            raise DataError(f"{source}: is a directory; use a glob such as {source}/*.txt")
        return [path]
    matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
    matches = [path for path in matches if path.is_file() or not files_only]
    if not matches:
        raise DataError(f"{source}: the glob matches no files")
    return list(dict.fromkeys(matches))


def _file_format(path: Path, cfg: DataConfig) -> str:
    if cfg.format in ("auto", "hf"):
        return FORMAT_BY_SUFFIX.get(path.suffix.lower(), "text")
    return cfg.format


def read_file(path: Path, cfg: DataConfig) -> list[Example]:
    """Every record of one local file."""
    text = _decode(path, cfg.encoding_errors)
    if not text.strip():
        raise DataError(f"{path}: the file is empty or holds only whitespace")
    fmt = _file_format(path, cfg)
    if fmt == "text":
        records = _plain_text_records(text, path, cfg)
    elif fmt == "jsonl":
        records = _table_records(str(path), *_jsonl_table(text, path, cfg.encoding_errors), cfg)
    else:
        delimiter = "\t" if fmt == "tsv" else ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        columns = list(reader.fieldnames or [])
        records = _table_records(str(path), columns, _csv_rows(reader, path), cfg)
    if not records:
        raise DataError(f"{path}: no record has any text")
    return records


def _decode(path: Path, errors: str) -> str:
    """File contents as text; with errors="strict" a bad byte is reported by line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from error
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is no part of the text
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{path}: line {line}: not valid UTF-8 ({error.reason}); convert the file to "
            "UTF-8 or set data.encoding_errors=replace"
        ) from error


def _plain_text_records(text: str, path: Path, cfg: DataConfig) -> list[Example]:
    """Blank-line-separated blocks if the file has any blank line inside, else lines."""
    if cfg.label_field is not None:
        raise DataError(f"{path}: plain text has no label column; unset data.label_field")
    body = text.strip()
    blocks = re.split(r"\n\s*\n", body) if re.search(r"\n\s*\n", body) else body.split("\n")
    return [Example(t) for t in map(normalize_whitespace, blocks) if t]


def _jsonl_table(text: str, path: Path, errors: str) -> tuple[list[str], list[Row]]:
    """Columns (every key seen, in order of appearance) and rows of a JSON Lines file."""
    rows = []
    # Split on "\n" alone: str.splitlines would also cut at U+2028 inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{path}: line {number}: malformed JSON ({error.msg}); "
                "expected one JSON object per line"
            ) from error
        except RecursionError as error:
            raise DataError(f"{path}: line {number}: JSON nested too deeply") from error
        if "\\u" in line:  # an escape may stand for half a surrogate pair: no text
            row = _valid_unicode(row, f"{path}: line {number}", errors)
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, got {line[:40]!r}")
        rows.append((f"{path}: line {number}", row))
    columns = list(dict.fromkeys(key for _, row in rows for key in row))
    return columns, rows


def _valid_unicode(row: Any, where: str, errors: str) -> Any:
    """`row` if its strings are valid Unicode; else, with errors="replace", a copy whose lone
    surrogates (escapes such as "\\ud800" outside a pair) are U+FFFD."""
    serialized = json.dumps(row, ensure_ascii=False)
    try:
        serialized.encode("utf-8")
        return row
    except UnicodeEncodeError as error:
        if errors == "strict":
            raise DataError(
                f"{where}: the escape \\u{ord(serialized[error.start]):x} is half a surrogate "
                "pair, not text; fix the file or set data.encoding_errors=replace"
            ) from error
    return json.loads(serialized.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


def _csv_rows(reader: csv.DictReader, path: Path) -> Iterator[Row]:
    try:
        for row in reader:
            yield f"{path}: line {reader.line_num}", row
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: {error}") from error


def _table_records(where: str, columns: list[str], rows: Iterable[Row],
                   cfg: DataConfig) -> list[Example]:
    """Records from rows of named columns, after checking the configured columns exist."""
    check_columns(where, columns, cfg)
    records = (record_of_row(row, cfg, row_where) for row_where, row in rows)
    return [record for record in records if record is not None]


def check_columns(where: str, columns: list[str], cfg: DataConfig) -> None:
    """A DataError listing the columns present if a configured text or label column is not."""
    present = ", ".join(columns) or "none"
    missing = [name for name in _text_fields(cfg) if name not in columns]
    if missing:
        raise DataError(
            f"{where}: no text column {', '.join(missing)} (data.text_field); "
            f"columns present: {present}"
        )
    for key in ("label_field", "sentence_label_field"):
        name = getattr(cfg, key)
        if name is not None and name not in columns:
            raise DataError(f"{where}: no label column {name} (data.{key}); "
                            f"columns present: {present}")


def record_of_row(row: dict[str, Any], cfg: DataConfig, where: str) -> Example | None:
    """The record of a row of named columns (`where` names it in errors); None if its text is
    empty. A text cell must be a string: a number, a list, an object, null or a missing cell
    is an error, never read as its Python `str()`. A label may be a string, a number or a
    boolean (read as its text); null or missing means unlabelled. Sentence labels are a list
    of such labels."""
    cells = []
    for name in _text_fields(cfg):
        value = row.get(name)
        if not isinstance(value, str):
            raise DataError(f"{where}: text column {name} holds {_described(value)}, "
                            "not a string")
        cells.append(value)
    text = normalize_whitespace(" ".join(cells))
    if not text:
        return None
    label = _label(row.get(cfg.label_field) if cfg.label_field else None,
                   f"{where}: label column {cfg.label_field}")
    sentence_labels = None
    if cfg.sentence_label_field is not None:
        column = f"{where}: sentence label column {cfg.sentence_label_field}"
        cell = row.get(cfg.sentence_label_field)
        if not isinstance(cell, list):
            raise DataError(f"{column} holds {_described(cell)}, not a list of labels")
        sentence_labels = tuple(_label(value, column) for value in cell)
    return Example(text, label, sentence_labels)


def _label(value: Any, where: str) -> str | None:
    """A label cell as text: None for null, missing or blank; a DataError for a list or an
    object, which have no one text."""
    if value is not None and not isinstance(value, str | int | float | bool):
        raise DataError(f"{where} holds {_described(value)}, not a string or a number")
    return (str(value).strip() or None) if value is not None else None


def _described(value: Any) -> str:
    """A cell's type and the start of its value, for an error message."""
    return "no value" if value is None else f"{type(value).__name__} {value!r:.40}"


def _text_fields(cfg: DataConfig) -> list[str]:
    return [cfg.text_field] if isinstance(cfg.text_field, str) else list(cfg.text_field)


def _load_hf(source: Source, cfg: DataConfig) -> list[Example]:
    """`datasets.load_dataset` of `source` as records; its failures become DataErrors."""
    import datasets  # imported here: it takes seconds and only this path needs it

    with hub_call(source) as offline:
        try:
            dataset = datasets.load_dataset(source.load_args[0], **source.load_args[1])
        except (OSError, ValueError) as error:
            raise DataError(f"{source.where}: cannot load it with `datasets`{offline}: "
                            f"{error}") from error
    text_fields = _text_fields(cfg)
    wanted = [name for name in [*text_fields, cfg.label_field, cfg.sentence_label_field]
              if name in dataset.column_names]
    rows = dataset.select_columns(list(dict.fromkeys(wanted)))
    numbered = ((f"{source.where}: row {number}", row)
                for number, row in enumerate(rows, start=1))
    records = _table_records(source.where, dataset.column_names, numbered, cfg)
    if not records:
        raise DataError(f"{source.where}: no record has any text")
    return records


HUB_CONNECT_TIMEOUT = 3.0  # seconds the Hub may take to accept a connection before it is
#   taken for unreachable and only the local `datasets` cache is read


def hub_reachable() -> bool:
    """Whether the Hub (`huggingface_hub`'s endpoint) accepts a connection."""
    from huggingface_hub import constants

    url = urllib.parse.urlsplit(constants.ENDPOINT)
    try:
        port = url.port or (80 if url.scheme == "http" else 443)
        socket.create_connection((url.hostname, port), HUB_CONNECT_TIMEOUT).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def hub_call(source: Source) -> Iterator[str]:
    """Around a `datasets` call on `source`: the log messages of `datasets` and
    `huggingface_hub` held back (an unreachable Hub would print each of five retries), and, for
    a name on a Hub that cannot be reached, offline mode, so that a cached dataset loads and any
    other fails at once. Yields what an error message adds: that it ran offline, and why."""
    import datasets
    from huggingface_hub import constants

    offline = source.on_hub and not hub_reachable()
    saved = [(logger, logger.level) for logger in map(logging.getLogger,
                                                      ("datasets", "huggingface_hub"))]
    flags = [(module, module.HF_HUB_OFFLINE) for module in (datasets.config, constants)]
    try:
        for logger, _ in saved:
            logger.setLevel(logging.ERROR)
        for module, _ in flags:
            module.HF_HUB_OFFLINE = module.HF_HUB_OFFLINE or offline
        yield f" (offline: the Hub, {constants.ENDPOINT}, cannot be reached)" if offline else ""
    finally:
        for logger, level in saved:
            logger.setLevel(level)
        for module, flag in flags:
            module.HF_HUB_OFFLINE = flag
