"""python -m textwae {train,generate,evaluate,plot,explore} ..."""

from textwae.cli.main import main

main()
