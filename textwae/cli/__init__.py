"""Command line: `textwae {train,generate,evaluate,plot}` (also train.py and generate.py)."""
