"""What the benchmark scripts share, one concept a module.

- paths: the repository, its configs and demo corpus, the shared corpora, results/
- corpora: the shared corpora as JSONL training files, and held-out examples
- runs: a training run (in this process or a child `train.py`) and its final figures
- results: results/NAME.json and what it records about the machine
- timing: the matmul peak, thread contention and ratios of interleaved timings

The scripts run as `python benchmarks/X.py` from the repository root, which puts benchmarks/
first on sys.path: they import these modules as `lib.X`, and the modules import each other
relatively, so they import as `benchmarks.lib.X` as well.
"""
