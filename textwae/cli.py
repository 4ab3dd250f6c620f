"""Command line: `textwae {train,generate,evaluate,plot} ...` (also train.py, generate.py).

Scripts parse; the library receives config objects. A user error prints one line on stderr
and exits with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed

from textwae.checkpoint import RunDirectoryError, atomic_write
from textwae.config import Config, ConfigError, DataConfig, load_config
from textwae.data import DataError, Example
from textwae.modes import mode_name, resolve_mode
from textwae.tokenizer import TokenizerError
from textwae.training import TrainingError

if TYPE_CHECKING:
    from textwae.generation import DecodingConfig
    from textwae.model import TextWAE

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
    local_rank = _start_distributed(config)
    if local_rank is not None and args.out is None:
        fail("under torchrun, name the run directory with --out so every process agrees")
    try:
        metrics = train(config, out, resume=args.resume)
    finally:
        if local_rank is not None:
            torch.distributed.destroy_process_group()
    if local_rank in (None, 0):
        print(json.dumps({"run": str(out), **{k: round(v, 4) for k, v in metrics.items()}}))


def _start_distributed(config: Config) -> int | None:
    """Under torchrun (WORLD_SIZE > 1): join the process group, nccl on GPUs, gloo on CPUs,
    and give each process its own GPU. Returns the local rank, or None in one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = config.train.device.startswith("cuda")
    if on_gpu:
        config.train.device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group("nccl" if on_gpu else "gloo")
    return local_rank


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
    group.add_argument("--beam", type=int, default=1, help="beam search of this width")
    group.add_argument("--device", default="cpu")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--format", choices=["text", "jsonl"], default="text")


def generate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="generate.py", description="Use a trained text WAE.")
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="decode samples of the prior")
    sample.add_argument("--n", type=int, default=10)
    sample.add_argument("--mode", default=None, help="sample from this mode: label or index")
    rebuild = commands.add_parser("reconstruct", help="encode texts and decode their codes")
    between = commands.add_parser("interpolate", help="decode the path between two texts")
    between.add_argument("start")
    between.add_argument("end")
    between.add_argument("--steps", type=int, default=5)
    modes = commands.add_parser("modes", help="samples, nearest training units and label "
                                "histogram of every mode")
    modes.add_argument("--n", type=int, default=5)
    encode = commands.add_parser("encode", help="print each text's code and mode as JSONL")
    move = commands.add_parser("transfer", help="rewrite texts into another mode")
    move.add_argument("--to", required=True, help="target mode: label or index")
    for sub in (rebuild, encode, move):
        sub.add_argument("texts", nargs="*")
        sub.add_argument("--input", type=Path, help="file with one text per line")
    for sub in (sample, rebuild, between, modes, encode, move):
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
        fail(f"give texts to {args.command}, or --input FILE")
    return texts


def _print(texts: list[str], modes: list[int], fmt: str) -> None:
    for text, mode in zip(texts, modes, strict=True):
        print(json.dumps({"text": text, "mode": mode}) if fmt == "jsonl" else text)


def _generate(args: argparse.Namespace) -> None:
    from textwae import generation
    from textwae.model import TextWAE

    decoding = generation.DecodingConfig(
        greedy=args.greedy, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, max_length=args.max_length, beam=args.beam)
    model = TextWAE.from_pretrained(args.model, device=args.device)
    labels, components = model.config.prior.labels, model.prior.components
    if args.command == "sample":
        mode = None if args.mode is None else resolve_mode(args.mode, labels, components)
        _print(*generation.sample(model, args.n, decoding, mode, args.seed), args.format)
    elif args.command == "reconstruct":
        _print(*generation.reconstruct(model, _read_texts(args), decoding, args.seed),
               args.format)
    elif args.command == "interpolate":
        _print(*generation.interpolate(model, args.start, args.end, args.steps, decoding,
                                       args.seed), args.format)
    elif args.command == "transfer":
        target = resolve_mode(args.to, labels, components)
        _print(*generation.transfer(model, _read_texts(args), target, decoding, args.seed),
               args.format)
    elif args.command == "encode":
        texts = _read_texts(args)
        codes = generation.encode(model, texts).mean
        for text, code, mode in zip(texts, codes.tolist(), model.prior.assign(codes).tolist(),
                                    strict=True):
            print(json.dumps({"text": text, "mode": mode, "label": mode_name(labels, mode),
                              "code": [round(value, 5) for value in code]}))
    else:
        _print_modes(model, args, decoding)


def _print_modes(model: TextWAE, args: argparse.Namespace, decoding: DecodingConfig) -> None:
    """Per mode: samples, then (when the training data is readable) the nearest training
    units to its mean and the label histogram of the training units assigned to it."""
    from textwae import generation
    from textwae.data import load_splits
    from textwae.modes import mode_report

    try:
        report = mode_report(model, load_splits(model.config.data)[0])
    except DataError as error:
        print(f"warning: no training-data report: {error}", file=sys.stderr)
        report = None
    labels = model.config.prior.labels
    for mode in range(model.prior.components):
        texts, modes = generation.sample(model, args.n, decoding, mode, args.seed)
        if args.format == "jsonl":
            _print(texts, modes, args.format)
            continue
        name = mode_name(labels, mode)
        print(f"== mode {mode}{f' ({name})' if name else ''} ==")
        _print(texts, modes, args.format)
        if report is not None:
            print(f"-- nearest training units; labels assigned: {report[mode]['labels']}")
            for text in report[mode]["nearest"]:
                print(f"   {text}")


def generate_main(argv: Sequence[str] | None = None) -> None:
    run_guarded(_generate, generate_parser().parse_args(argv))


# -- evaluate and plot ----------------------------------------------------------------------

def _add_model_and_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="run directory")
    parser.add_argument("--text-field", default=None,
                        help="text column of the data (default: the run's data.text_field)")
    parser.add_argument("--label-field", default=None,
                        help="label column of the data (default: the run's data.label_field; "
                        "'' for none)")
    parser.add_argument("--device", default="cpu")


def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textwae evaluate", description="Score a trained model on held-out data and print "
        "one JSON object: BLEU, perplexity, MMD, diversity, interpolation and, with labels, "
        "mode purity, NMI and the mode accuracy an independent judge reports.")
    _add_model_and_fields(parser)
    parser.add_argument("--data", default=None,
                        help="held-out data: a path, glob or `datasets` name (default: the "
                        "validation data of the run's config)")
    parser.add_argument("--n-samples", type=int, default=500,
                        help="prior samples for Self-BLEU and distinct-n, and per label for "
                        "mode_accuracy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return parser


def plot_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textwae plot", description="Write latent_map.png and training_curves.png into "
        "the run directory.")
    _add_model_and_fields(parser)
    parser.add_argument("--data", default=None,
                        help="data to map (default: the validation data of the run's config)")
    return parser


def _data_config(config: Config, args: argparse.Namespace,
                 text_field: bool = True) -> DataConfig:
    """The run's data settings with --label-field ('' unsets) and, unless `text_field` is
    False, --text-field applied."""
    changes: dict[str, object] = {}
    if text_field and args.text_field is not None:
        changes["text_field"] = args.text_field
    if args.label_field is not None:
        changes["label_field"] = args.label_field or None
    return dataclasses.replace(config.data, **changes)


def _held_out(args: argparse.Namespace, data: DataConfig) -> list[Example]:
    """--data read with the run's settings, or else the run's validation split."""
    from textwae.data import load_splits, read_examples

    if args.data is not None:
        return read_examples(args.data, dataclasses.replace(data, format="auto"))
    return load_splits(data)[1]


def _judge_examples(config: Config, args: argparse.Namespace) -> list[Example] | None:
    """The run's whole training split with every label, for the judge; None if unreadable.

    load_splits keeps every label: data.labeled_fraction only thins them inside training.
    """
    from textwae.data import load_splits

    try:  # the run's own text column: --text-field names the held-out data's
        return load_splits(_data_config(config, args, text_field=False))[0]
    except DataError as error:
        warnings.warn(f"cannot read the run's training data for the judge ({error}); "
                      "mode_accuracy is left out", stacklevel=2)
        return None


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Print each distinct warning once as `warning: ...` on stderr, without source lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for message in dict.fromkeys(str(w.message) for w in caught):
                print(f"warning: {message}", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> None:
    from textwae.evaluation import evaluate
    from textwae.model import TextWAE

    if args.n_samples < 1:
        fail(f"--n-samples must be positive, got {args.n_samples}")
    with _warnings_to_stderr():
        model = TextWAE.from_pretrained(args.model, device=args.device)
        examples = _held_out(args, _data_config(model.config, args))
        labelled = any(example.label is not None for example in examples)
        judge_data = _judge_examples(model.config, args) if labelled else None
        result = evaluate(model, examples, judge_data, n_samples=args.n_samples, seed=args.seed)
    text = json.dumps(result, indent=2, allow_nan=False)
    if args.out is not None:
        atomic_write(args.out, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    print(text)


def evaluate_main(argv: Sequence[str] | None = None) -> None:
    run_guarded(_evaluate, evaluate_parser().parse_args(argv))


def _plot(args: argparse.Namespace) -> None:
    from textwae.model import TextWAE
    from textwae.plots import write_plots

    with _warnings_to_stderr():
        model = TextWAE.from_pretrained(args.model, device=args.device)
        examples = _held_out(args, _data_config(model.config, args))
        for path in write_plots(model, args.model, examples):
            print(path)


def plot_main(argv: Sequence[str] | None = None) -> None:
    run_guarded(_plot, plot_parser().parse_args(argv))


# -- textwae --------------------------------------------------------------------------------

COMMANDS = {"train": train_main, "generate": generate_main, "evaluate": evaluate_main,
            "plot": plot_main}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        fail(f"usage: textwae {{{','.join(COMMANDS)}}} ...")
    COMMANDS[argv[0]](argv[1:])
