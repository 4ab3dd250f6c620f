"""Label-guided modes: which prior component each label owns, and which units carry a label."""

from __future__ import annotations

import torch

from textwae.config.schema import PriorConfig
from textwae.data.records import Example
from textwae.data.units import hash_coin
from textwae.errors import ConfigError

FREE = -1  # the component of a unit whose label is unknown or unused


def mode_labels(examples: list[Example], prior: PriorConfig) -> list[str] | None:
    """Labels in component order: `prior.labels`, else the sorted labels of the data."""
    present = sorted({example.label for example in examples if example.label is not None})
    if not present:
        return None
    labels = prior.labels if prior.labels is not None else present
    unknown = [label for label in present if label not in labels]
    if unknown:
        raise ConfigError(f"labels {unknown[:5]} of the data are not in prior.labels {labels}")
    if len(labels) > prior.components:
        raise ConfigError(f"the data has {len(labels)} labels but prior.components is "
                          f"{prior.components}: every label needs its own component")
    return list(labels)


def unit_components(examples: list[Example], labels: list[str], fraction: float = 1.0,
                    seed: int = 0) -> torch.Tensor:
    """(N,) component of each unit, FREE where the label is missing, not in the used share, or
    not among `labels` (a stream may hold labels its first units did not)."""
    index = {label: k for k, label in enumerate(labels)}
    return torch.tensor([
        index.get(example.label, FREE)
        if example.label is not None and hash_coin("label", seed, example.text, fraction)
        else FREE
        for example in examples], dtype=torch.long)


def label_shares(examples: list[Example], labels: list[str], fraction: float = 1.0,
                 seed: int = 0) -> list[float] | None:
    """Each label's share of the units whose label guides the modes (as `unit_components`
    picks them), in `labels` order; None if some label has no such unit."""
    components = unit_components(examples, labels, fraction, seed)
    counts = torch.bincount(components[components >= 0], minlength=len(labels))  # (K,)
    if not bool((counts > 0).all()):
        return None
    return (counts / counts.sum()).tolist()


def resolve_mode(value: str | int, labels: list[str] | None, components: int) -> int:
    """A component index from a label name or an index; a label name wins over a number."""
    if labels is not None and str(value) in labels:
        return labels.index(str(value))
    try:
        mode = int(value)
    except ValueError:
        names = f"; labels: {', '.join(labels)}" if labels else ""
        raise ConfigError(
            f"mode {value!r} is neither a label nor a component index{names}") from None
    if not 0 <= mode < components:
        raise ConfigError(f"mode {mode} is out of range: this model has modes 0..{components - 1}")
    return mode


def mode_name(labels: list[str] | None, mode: int) -> str | None:
    """The label a mode stands for, if it has one."""
    return labels[mode] if labels is not None and mode < len(labels) else None
