"""python -m textwae {train,generate,evaluate,plot} ..."""

from textwae.cli.main import main

main()
