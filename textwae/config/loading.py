"""Loading a config: defaults <- experiment YAML <- `key=value` overrides, merged once.

Config flows one way: `configs/default.yaml` (every default) <- an experiment YAML holding only
what differs <- command-line overrides. The merged result is saved in the run directory, so a
checkpoint rebuilds without the original command line. Unknown keys and wrong types raise
`ConfigError` naming the key (and the closest valid one); `Config.check` then checks values.

A config is read as hostile input: a file larger than MAX_YAML_BYTES is refused unread, and a
document whose aliases would expand it beyond MAX_YAML_EXPANSION is refused before any object
is built (a few hundred bytes of nested aliases can otherwise stand for billions of items).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from textwae.config.schema import Config
from textwae.errors import ConfigError

MAX_YAML_BYTES = 1 << 20  # a config file larger than this is refused unread
# what a document may expand to through its aliases (its nodes plus their characters): a few
# times the largest file read, so aliases can shorten a config but not multiply it
MAX_YAML_EXPANSION = 4 * MAX_YAML_BYTES


class YAMLBombError(yaml.YAMLError):
    """A YAML document whose aliases expand it beyond MAX_YAML_EXPANSION, or refer to
    themselves."""


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that measures a composed document before building any object from it."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def _check_expansion(root: yaml.Node) -> None:
    """Raise YAMLBombError if `root`, every alias replaced by its target, would exceed
    MAX_YAML_EXPANSION: each node counts 1, a scalar also its length. An alias is the same
    node object as its anchor, so each node is measured once (a walk without recursion)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(id(node))
            size = 1 + sum(sizes[id(child)] for child in children)
            if isinstance(node, yaml.ScalarNode):
                size += len(node.value)
            if size > MAX_YAML_EXPANSION:
                raise YAMLBombError(f"its aliases expand it beyond {MAX_YAML_EXPANSION:,} "
                                    "characters (an alias bomb?)")
            sizes[id(node)] = size
            continue
        if id(node) in open_nodes:
            raise YAMLBombError("an alias refers to a node that holds it")
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str) -> Any:
    """One YAML document read safely: plain data, aliases bounded; raises yaml.YAMLError."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader: plain data only
    except RecursionError as error:  # PyYAML composes nested collections recursively
        raise YAMLBombError("it nests collections too deeply") from error


def _check_value(key: str, value: Any, annotation: Any) -> Any:
    """Return `value` converted to `annotation`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_value(key, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(annotation)}")
    if annotation is type(None):
        if value is None:
            return None
    elif origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, list):
            return [_check_value(key, item, item_type) for item in value]
    elif annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        # NaN is no setting: it passes every range check and turns the loss into NaN
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, annotation):
        return value
    raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(annotation)}")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _merge(target: Any, updates: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested dict of updates to a dataclass instance in place, checking every key."""
    if not isinstance(updates, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(target))
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(_unknown_key_message(dotted, [f"{prefix}{name}" for name in hints]))
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, prefix=f"{dotted}.")
        else:
            setattr(target, key, _check_value(dotted, value, hints[key]))


def _unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
    return f"unknown config key {key!r}{hint}"


def all_keys(config: Any | None = None, prefix: str = "") -> list[str]:
    """Every dotted leaf key of a config, e.g. 'train.max_steps'."""
    config = Config() if config is None else config
    keys = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            keys.extend(all_keys(value, prefix=f"{prefix}{item.name}."))
        else:
            keys.append(f"{prefix}{item.name}")
    return keys


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ['train.max_steps=100', 'data.train=[a.txt, b.txt]'] into a nested dict.

    Values are parsed as YAML, so numbers, booleans, null and lists work as users expect.
    """
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = parse_yaml(raw) if raw else ""
        except YAMLBombError as error:
            raise ConfigError(f"override {item!r} is refused: {error}") from error
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: cannot parse value: {error}") from error
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_YAML_BYTES + 1)  # a bounded read: /dev/zero is refused too
        if len(data) > MAX_YAML_BYTES:
            raise ConfigError(f"config {path} is larger than {MAX_YAML_BYTES:,} bytes; a "
                              "config holds settings, not data: name data files in it")
        text = data.decode("utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {error.start})") from error
    try:
        loaded = parse_yaml(text)
    except YAMLBombError as error:
        raise ConfigError(f"config {path} is refused: {error}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {error}") from error
    return loaded or {}


# what a run directory's config.yaml means by a key it lacks because it was written before the
# key existed, where that differs from today's default
BEFORE_KEYS_EXISTED: dict[str, Any] = {"model": {"mode_input": False, "output_cutoffs": None,
                                                  "transformer_adaptive_softmax": False},
                                        "generation": {"transfer_steps": 1, "sample_redraws": 0}}
# keys that runs saved before have in another section: (old section, new section, key)
MOVED_KEYS = [("prior", "generation", key)
              for key in ("transfer_strength", "transfer_steps", "sample_redraws")]


def moved_keys(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the keys of `MOVED_KEYS` where the schema has them today."""
    saved = {section: dict(values) if isinstance(values, dict) else values
             for section, values in saved.items()}
    for old, new, key in MOVED_KEYS:
        if isinstance(saved.get(old), dict) and key in saved[old]:
            saved.setdefault(new, {})[key] = saved[old].pop(key)
    return saved


def load_run_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """A run directory's saved config.yaml, read as the run was trained."""
    return load_config(BEFORE_KEYS_EXISTED, moved_keys(read_yaml(path)), overrides=overrides)


def load_config(*sources: str | Path | dict[str, Any], overrides: list[str] = ()) -> Config:
    """Merge YAML files or dicts, in order, then `key=value` overrides, onto the defaults."""
    config = Config()
    for source in sources:
        _merge(config, source if isinstance(source, dict) else read_yaml(source))
    _merge(config, parse_overrides(list(overrides)))
    config.check()
    return config
