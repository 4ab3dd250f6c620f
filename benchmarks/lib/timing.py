"""Timing on a shared machine: the fp32 matmul peak, a check that threads are not contended,
and ratios of timings taken side by side."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch

PEAK_SIZE = 2048  # the peak matmul is (PEAK_SIZE, PEAK_SIZE) @ (PEAK_SIZE, PEAK_SIZE)


def matmul_peak(repeats: int = 3) -> float:
    """FLOP/s of the best of `repeats` square fp32 matmuls."""
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    out = torch.empty(PEAK_SIZE, PEAK_SIZE)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * PEAK_SIZE**3 / best


def thread_scaling(threads: int) -> dict[int, float]:
    """Peak matmul GFLOP/s at one thread and at `threads`, alternated; warns when `threads`
    gain little over one, a sign that other processes hold the cores: OpenMP threads then
    wait at every barrier for a thread the scheduler has parked, and steps made of many small
    operators slow down far more than the one large matmul does. Leaves `threads` set."""
    best = {1: 0.0, threads: 0.0}
    for _ in range(3):
        for count in best:
            torch.set_num_threads(count)
            best[count] = max(best[count], matmul_peak(2) / 1e9)
    torch.set_num_threads(threads)
    if threads > 1 and best[threads] < 1.3 * best[1]:
        print(f"warning: {threads} threads reach {best[threads]:.0f} GFLOP/s against "
              f"{best[1]:.0f} with one: the cores are shared with other work, and timings at "
              f"{threads} threads are contended (try --threads 1)", flush=True)
    return best


def median_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """The median of a[i] / b[i]: pairs timed one after the other share the machine's load."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))
