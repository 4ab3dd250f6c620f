"""Entry points: `textwae {train,generate,evaluate,plot,explore}`, train.py and generate.py.

Scripts parse; the library receives config objects. Each subcommand names its handler with
`set_defaults(handler=...)`, and `run_command` turns every user error into one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from textwae.cli import evaluate, explore, generate, train
from textwae.cli.common import ArgumentParser, run_command

TRAIN_HELP = ("Train a text WAE. Settings: configs/default.yaml, an optional --config holding "
              "what differs, then key=value overrides.")
EVALUATE_HELP = ("Score a trained model on held-out data and print one JSON object: BLEU, "
                 "perplexity, MMD, diversity, interpolation and, with labels, mode purity, NMI "
                 "and the mode accuracy an independent judge reports.")
PLOT_HELP = "Write latent_map.png and training_curves.png into the run directory."


def parser() -> argparse.ArgumentParser:
    """`textwae`, with every subcommand."""
    top = ArgumentParser(prog="textwae", description="Text generation with a "
                                  "Wasserstein auto-encoder latent space.")
    commands = top.add_subparsers(dest="subcommand", required=True)
    train.add_arguments(commands.add_parser("train", help="train a model",
                                            description=TRAIN_HELP))
    generate.add_arguments(commands.add_parser("generate", help="use a trained model"))
    evaluate.add_evaluate_arguments(commands.add_parser("evaluate", help="score a model",
                                                        description=EVALUATE_HELP))
    evaluate.add_plot_arguments(commands.add_parser("plot", help="plot a run",
                                                    description=PLOT_HELP))
    explore.add_arguments(commands.add_parser("explore", help="serve a page to explore a run",
                                              description=explore.EXPLORE_HELP))
    return top


def train_parser() -> argparse.ArgumentParser:
    standalone = ArgumentParser(prog="train.py", description=TRAIN_HELP)
    train.add_arguments(standalone)
    return standalone


def generate_parser() -> argparse.ArgumentParser:
    standalone = ArgumentParser(prog="generate.py", description="Use a trained "
                                         "text WAE.")
    generate.add_arguments(standalone)
    return standalone


def main(argv: Sequence[str] | None = None) -> None:
    run_command(parser(), argv)


def train_main(argv: Sequence[str] | None = None) -> None:
    run_command(train_parser(), argv)


def generate_main(argv: Sequence[str] | None = None) -> None:
    run_command(generate_parser(), argv)
