"""metrics.jsonl: a JSON record a line, appended while training, read by plots and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textwae.errors import RunDirectoryError
from textwae.runs.checkpoint import METRICS_FILE, atomic_write


class MetricsLog:
    """The metrics log of one run directory."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / METRICS_FILE

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    def drop_after(self, step: int) -> None:
        """Forget the records a stopped run wrote after its last saved state (and a line torn
        by a kill): the resumed run trains and logs those steps again."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        atomic_write(self.path, lambda tmp: tmp.write_text("".join(kept), "utf-8"))


def read_metrics(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Records of a metrics.jsonl (or of a run directory's) by split, sorted by step; a step
    logged twice keeps its last record."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise RunDirectoryError(f"cannot read {path}: {error.strerror}") from error
    by_split: dict[str, dict[int, dict]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise RunDirectoryError(
                f"{path}: line {number}: malformed JSON ({error.msg})") from error
        if isinstance(record, dict) and "step" in record and "split" in record:
            by_split.setdefault(record["split"], {})[record["step"]] = record
    if not by_split:
        raise RunDirectoryError(f"{path} holds no metrics records")
    return {split: [steps[s] for s in sorted(steps)] for split, steps in by_split.items()}
