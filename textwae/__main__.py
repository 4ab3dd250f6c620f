"""python -m textwae {train,generate} ..."""

from textwae.cli import main

main()
