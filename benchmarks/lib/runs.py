"""A training run: in this process through `textwae.training.pipeline.train` (the one training
loop) and scored through `textwae.evaluation.evaluate.evaluate`, or `train.py` in a child
process. Nothing here trains or scores on its own; metrics.jsonl is read through
`textwae.runs.metrics_log.read_metrics`."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.evaluation.evaluate import evaluate
from textwae.models.autoencoder import TextWAE
from textwae.runs.metrics_log import read_metrics
from textwae.training.pipeline import train

from .paths import RESULTS, ROOT

POLL_SECONDS = 5  # how often train_in_child calls while_running


def fresh_run_dir(name: str) -> Path:
    """results/runs/NAME, emptied of an earlier run."""
    run = RESULTS / "runs" / name
    shutil.rmtree(run, ignore_errors=True)
    return run


def final_record(run: Path) -> dict[str, Any]:
    """The validation record a finished run ends with: its steps, validation figures, and
    `elapsed` / `tokens_per_second` over the whole run."""
    return read_metrics(run)["valid"][-1]


def train_in_child(run: Path, arguments: Sequence[str], launcher: Sequence[str] = (),
                   env: dict[str, str] | None = None,
                   while_running: Callable[[], None] | None = None) -> resource.struct_rusage:
    """`train.py --out RUN ARGUMENTS` in a child process (`launcher` before the script, e.g.
    torchrun; its output silenced); returns the child's own resource usage. `while_running`
    is called every few seconds until the child ends, and once after."""
    command = [*(launcher or [sys.executable]), str(ROOT / "train.py"), "--out", str(run),
               *arguments]
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    while True:  # this child's own resource usage, once it has ended
        pid, status, usage = os.wait4(child.pid, 0 if while_running is None else os.WNOHANG)
        if while_running is not None:
            while_running()
        if pid:
            break
        time.sleep(POLL_SECONDS)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"train.py into {run} failed (exit status {child.returncode})")
    return usage


def train_and_evaluate(name: str, configs: list[Path | dict], overrides: list[str],
                       evaluation: list[Example], train_examples: list[Example] | None = None,
                       n_samples: int = 500) -> dict[str, Any]:
    """Train one configuration into results/runs/NAME and return its figures."""
    run = fresh_run_dir(name)
    config = load_config(*configs, overrides=overrides)
    started = time.perf_counter()
    train(config, run)
    wall = time.perf_counter() - started
    last_valid = final_record(run)
    model = TextWAE.from_pretrained(run)
    scores = evaluate(model, evaluation, train_examples, n_samples=n_samples)
    result = {"name": name, "run": str(run.relative_to(ROOT)), "wall_seconds": round(wall, 1),
              "steps": last_valid["step"], "valid": last_valid,
              "train_tokens_per_second": last_valid["tokens_per_second"], **scores}
    print(json.dumps({k: result[k] for k in ["name", "bleu", "steps"]}), file=sys.stderr)
    return result
