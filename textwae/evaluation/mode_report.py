"""What each mode holds: the units nearest its mean and the labels of the units it is given."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from textwae.data.records import Example
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import codes_of


def mode_report(model: TextWAE, examples: list[Example], nearest: int = 3,
                max_units: int = 2000) -> list[dict[str, Any]]:
    """For each mode: the `nearest` units to its mean, and the label histogram of the units
    assigned to it (over at most `max_units` units, spread evenly over the data)."""
    examples = examples[:: max(1, len(examples) // max_units)]
    codes = codes_of(model, [example.text for example in examples])  # (N, D)
    assigned = model.prior.assign(codes).tolist()
    distances = torch.cdist(model.prior.means, codes)  # (K, N)
    report = []
    for mode in range(model.prior.components):
        closest = list(dict.fromkeys(examples[i].text for i in distances[mode].argsort().tolist()))
        histogram = Counter(example.label or "-" for example, k in zip(examples, assigned,
                                                                        strict=True)
                            if k == mode)
        report.append({"nearest": closest[:nearest],  # distinct texts: corpora repeat units
                       "labels": dict(histogram.most_common())})
    return report
