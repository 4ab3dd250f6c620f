"""Command line: `textwae train ...` and `textwae generate ...` (also train.py, generate.py).

Scripts parse; the library receives config objects. A user error prints one line on stderr
and exits with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from textwae.checkpoint import RunDirectoryError
from textwae.config import ConfigError, load_config
from textwae.data import DataError
from textwae.tokenizer import TokenizerError
from textwae.training import TrainingError

USER_ERRORS = (ConfigError, DataError, RunDirectoryError, TokenizerError, TrainingError)
DEFAULT_CONFIG = Path("configs/default.yaml")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_guarded(command: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> None:
    try:
        command(args)
    except USER_ERRORS as error:
        fail(str(error))


# -- train ----------------------------------------------------------------------------------

def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py", description="Train a text WAE. Settings: configs/default.yaml, "
        "an optional --config holding what differs, then key=value overrides.")
    parser.add_argument("--config", type=Path, default=None,
                        help="experiment YAML (default: configs/default.yaml if present)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default: runs/CONFIG-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last saved state")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="e.g. train.max_steps=1000 data.train=corpus.txt")
    return parser


def _train(args: argparse.Namespace) -> None:
    from textwae.training import train

    if args.resume:
        if args.out is None or args.config is not None:
            fail("--resume needs --out RUN and takes its config from RUN/config.yaml")
        config = load_config(args.out / "config.yaml", overrides=args.overrides)
        out = args.out
    else:
        config_path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
        config = load_config(*[config_path] if config_path else [], overrides=args.overrides)
        stem = config_path.stem if config_path else "default"
        out = args.out or Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    metrics = train(config, out, resume=args.resume)
    print(json.dumps({"run": str(out), **{k: round(v, 4) for k, v in metrics.items()}}))


def train_main(argv: Sequence[str] | None = None) -> None:
    run_guarded(_train, train_parser().parse_args(argv))


# -- generate -------------------------------------------------------------------------------

def _add_decoding(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--temperature", type=float, default=1.0)
    group.add_argument("--top-k", type=int, default=0)
    group.add_argument("--top-p", type=float, default=1.0)
    group.add_argument("--greedy", action="store_true")
    group.add_argument("--max-length", type=int, default=64)
    group.add_argument("--device", default="cpu")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--format", choices=["text", "jsonl"], default="text")


def generate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="generate.py", description="Use a trained text WAE.")
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="decode samples of the prior")
    sample.add_argument("--n", type=int, default=10)
    sample.add_argument("--mode", type=int, default=None, help="sample from this component")
    rebuild = commands.add_parser("reconstruct", help="encode texts and decode their codes")
    rebuild.add_argument("texts", nargs="*")
    rebuild.add_argument("--input", type=Path, help="file with one text per line")
    between = commands.add_parser("interpolate", help="decode the path between two texts")
    between.add_argument("start")
    between.add_argument("end")
    between.add_argument("--steps", type=int, default=5)
    modes = commands.add_parser("modes", help="samples from every prior component")
    modes.add_argument("--n", type=int, default=5)
    for sub in (sample, rebuild, between, modes):
        sub.add_argument("--model", type=Path, required=True, help="run directory")
        _add_decoding(sub)
    return parser


def _read_texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts)
    if args.input is not None:
        try:
            texts += args.input.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            fail(f"cannot read {args.input}: {error}")
        texts = [text for text in texts if text.strip()]
    if not texts:
        fail("give texts to reconstruct, or --input FILE")
    return texts


def _print(texts: list[str], modes: list[int], fmt: str) -> None:
    for text, mode in zip(texts, modes, strict=True):
        print(json.dumps({"text": text, "mode": mode}) if fmt == "jsonl" else text)


def _generate(args: argparse.Namespace) -> None:
    from textwae import generation
    from textwae.model import TextWAE

    decoding = generation.DecodingConfig(
        greedy=args.greedy, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, max_length=args.max_length)
    model = TextWAE.from_pretrained(args.model, device=args.device)
    components = model.prior.components
    if args.command == "sample":
        if args.mode is not None and not 0 <= args.mode < components:
            fail(f"--mode {args.mode} is out of range: this model has modes 0..{components - 1}")
        _print(*generation.sample(model, args.n, decoding, args.mode, args.seed), args.format)
    elif args.command == "reconstruct":
        _print(*generation.reconstruct(model, _read_texts(args), decoding, args.seed),
               args.format)
    elif args.command == "interpolate":
        _print(*generation.interpolate(model, args.start, args.end, args.steps, decoding,
                                       args.seed), args.format)
    else:
        for mode in range(components):
            if args.format == "text":
                print(f"== mode {mode} ==")
            _print(*generation.sample(model, args.n, decoding, mode, args.seed), args.format)


def generate_main(argv: Sequence[str] | None = None) -> None:
    run_guarded(_generate, generate_parser().parse_args(argv))


# -- textwae --------------------------------------------------------------------------------

COMMANDS = {"train": train_main, "generate": generate_main}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        fail(f"usage: textwae {{{','.join(COMMANDS)}}} ...")
    COMMANDS[argv[0]](argv[1:])
