"""python -m textwae {train,generate,evaluate,plot} ..."""

from textwae.cli import main

main()
