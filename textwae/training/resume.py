"""What `--resume key=value` may change: the budget and how training runs, not what the run's
files were made with.

An override that cannot apply is refused with its reason before anything is written: the
tokenizer was trained when the run began, and the saved weights have the shapes the model
settings gave them. Raising a finished stage's step or time cap is what a user means by
resuming it with a larger one, and extends that stage.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from textwae.config.loading import load_run_config
from textwae.config.schema import Config, TrainConfig
from textwae.errors import ConfigError
from textwae.models.story import STORY_DIR
from textwae.runs import checkpoint
from textwae.training.trainer import Progress, finished

TOKENIZER_REASON = "tokenizer.model was trained with it when the run began"
WEIGHTS_REASON = "the saved weights were built with it"
# settings fixed once a run has begun (a section, or one key), and why
FIXED: dict[str, str] = {
    "tokenizer": TOKENIZER_REASON,
    "data.mask_names": TOKENIZER_REASON,
    "data.unit": "the tokenizer and the model were trained on these units",
    "model": WEIGHTS_REASON,
    "prior.components": WEIGHTS_REASON,
    "prior.learnable": WEIGHTS_REASON,
    "regularizer.adversary_hidden": "the saved discriminator was built with it",
    "regularizer.adversary_layers": "the saved discriminator was built with it",
}
# fixed once the story stage has begun
STORY_FIXED: dict[str, str] = {
    "story.enabled": "the story stage has begun",
    "story.latent_dim": "the saved story weights were built with it",
    "story.hidden_size": "the saved story weights were built with it",
    "story.code_mixtures": "the saved story weights were built with it",
}


def changed_settings(saved: Config, config: Config) -> dict[str, tuple[Any, Any]]:
    """Every dotted key whose value differs: key -> (saved, now)."""
    old, new = _dotted(dataclasses.asdict(saved)), _dotted(dataclasses.asdict(config))
    return {key: (old[key], new[key]) for key in new if old.get(key) != new[key]}


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resume_settings(config: Config, run_dir: Path) -> None:
    """Refuse settings in `config` that differ from the run's saved ones and cannot apply to
    a resumed run, naming each, its reason and the fix."""
    saved = load_run_config(run_dir / checkpoint.CONFIG_FILE)
    fixed = dict(FIXED)
    if (run_dir / STORY_DIR / checkpoint.STATE_FILE).is_file():
        fixed.update(STORY_FIXED)
    for key, (old, new) in changed_settings(saved, config).items():
        reason = fixed.get(key) or fixed.get(key.split(".")[0])
        if reason is not None:
            raise ConfigError(
                f"--resume cannot change {key} ({old!r} -> {new!r}): {reason}. Drop the "
                f"override to continue the run, or train a new run with it into another --out")


def refuse_finished(state: Path, cfg: TrainConfig, section: str) -> None:
    """Refuse to resume a stage (whose budget is `cfg`, set in `section`) that its saved
    `state` shows finished: it would train nothing."""
    progress = Progress.saved_in(state)
    if not finished(progress, cfg):
        return
    spent = (f"{section}.max_steps={cfg.max_steps} steps" if progress.step >= cfg.max_steps
             else f"{section}.max_time={cfg.max_time} seconds")
    raise ConfigError(f"nothing to resume: the run has trained its {spent}; raise "
                      f"{section}.max_steps or {section}.max_time (--resume "
                      f"{section}.max_steps=N) to train on")
