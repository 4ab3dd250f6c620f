"""Where the benchmarks read and write."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
CONFIGS = ROOT / "configs"
DEMO_CORPUS = ROOT / "data" / "stories.jsonl"  # the embedded corpus
SHARED = ROOT.parent / "shared" / "data"  # corpora from elsewhere, never copied in
RESULTS = ROOT / "benchmarks" / "results"
