"""results/NAME.json, and what a result records about the machine it was measured on."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
import transformers

from .paths import RESULTS


def add_out_argument(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--out", default=default,
                        help=f"write benchmarks/results/OUT.json (default: {default})")


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write results/NAME.json; returns its path."""
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def machine() -> dict[str, Any]:
    """The processor, its cores, the versions of torch and transformers, and the day."""
    return {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "date": time.strftime("%Y-%m-%d")}
