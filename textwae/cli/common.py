"""What every subcommand shares: the one error handler, warnings on stderr, data selection."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from textwae.config.schema import Config, DataConfig, check_device
from textwae.data.records import Example
from textwae.data.splits import load_splits, read_examples
from textwae.errors import DataError, TextWAEError
from textwae.models.autoencoder import TextWAE
from textwae.training.interrupt import Stopped


class UsageError(TextWAEError):
    """Command-line arguments that do not fit together."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors as one line: `error: PROG: MESSAGE`, exit 2 (`--help` for
    the usage), like every other user error; subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def load_model(args: argparse.Namespace) -> TextWAE:
    """The run directory --model on the --device this machine has."""
    check_device("--device", args.device)
    return TextWAE.from_pretrained(args.model, device=args.device)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Parse `argv` and call the handler its subcommand set (`set_defaults(handler=...)`).

    Every failure ends in one line on stderr and no traceback (unless `--debug` is given): a
    user error (any `TextWAEError`) or an environment failure (a path that cannot be read or
    written, a full disk) exits with status 2, Ctrl-C with 130 (SIGTERM, SIGHUP while
    training: 143, 129), anything else with 1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = parser.parse_args([arg for arg in argv if arg != "--debug"])
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    except (Exception, KeyboardInterrupt) as error:
        if debug:
            raise
        status, message = describe_failure(error)
        print(f"error: {' '.join(message.split())}", file=sys.stderr)  # one line
        raise SystemExit(status) from None


def describe_failure(error: BaseException) -> tuple[int, str]:
    """The exit status and the one line that explain `error` to the user."""
    if isinstance(error, TextWAEError):
        return error.exit_status, str(error)
    if isinstance(error, Stopped):  # SIGTERM or SIGHUP too, while training
        return error.exit_status, str(error)
    if isinstance(error, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        reason = error.strerror or str(error)
        if error.errno == errno.ENOSPC:
            reason += "; free some space: files already written keep their last complete version"
        return 2, f"{where}{reason}"
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error) \
            or "out of memory" in str(error).lower():
        return 2, ("out of memory: use smaller model sizes, train.batch_size or data.max_length, "
                   "or a smaller --n")
    return 1, (f"internal error: {type(error).__name__}: {error} (run again with --debug for the "
               "traceback, and please report it)")


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Print each distinct warning once as `warning: ...` on stderr, without source lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for message in dict.fromkeys(str(w.message) for w in caught):
                print(f"warning: {message}", file=sys.stderr)


def add_model_and_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="run directory")
    parser.add_argument("--text-field", default=None,
                        help="text column of the data (default: the run's data.text_field)")
    parser.add_argument("--label-field", default=None,
                        help="label column of the data (default: the run's data.label_field; "
                        "'' for no labels, sentence labels included)")
    parser.add_argument("--device", default="cpu")


def data_config(config: Config, args: argparse.Namespace, text_field: bool = True) -> DataConfig:
    """The run's data settings with --label-field ('' unsets) and, unless `text_field` is
    False, --text-field applied."""
    changes: dict[str, object] = {}
    if text_field and args.text_field is not None:
        changes["text_field"] = args.text_field
    if args.label_field == "":  # no labels at all, the sentences' own neither
        changes.update(label_field=None, sentence_label_field=None)
    elif args.label_field is not None:
        changes["label_field"] = args.label_field
    return dataclasses.replace(config.data, **changes)


def held_out(args: argparse.Namespace, data: DataConfig) -> list[Example]:
    """--data read with the run's settings, or else the run's validation split."""
    if args.data is not None:
        return read_examples(args.data, dataclasses.replace(data, format="auto"))
    return load_splits(data)[1]


def judge_examples(config: Config, args: argparse.Namespace,
                   unit: str | None = None) -> list[Example] | None:
    """The run's whole training split with every label, for the judge; None if unreadable.
    `unit` ("story") reads it in other units than the run's.

    load_splits keeps every label: data.labeled_fraction only thins them inside training.
    """
    data = data_config(config, args, text_field=False)
    try:  # the run's own text column: --text-field names the held-out data's
        return load_splits(dataclasses.replace(data, unit=unit or data.unit))[0]
    except DataError as error:
        warnings.warn(f"cannot read the run's training data for the judge ({error}); "
                      "the figures judged against it are left out", stacklevel=2)
        return None
