"""`textwae explore`: serve the latent explorer page over a run, on this machine."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys

from textwae.cli.common import (
    UsageError,
    add_model_and_fields,
    data_config,
    held_out,
    load_model,
    warnings_to_stderr,
)
from textwae.explore.actions import Explorer
from textwae.explore.guard import is_loopback
from textwae.explore.latent_map import build_latent_map

EXPLORE_HELP = ("Serve a local page over a trained run: its latent map (hover a point to read "
                "it, click it to decode it), encoding, interpolation, transfer and sampling.")
MISSING_EXTRA = "the explorer needs its extra: pip install 'textwae[explore]'"
EXTRA_MODULES = {"gradio", "plotly"}
# What Gradio reads before it is imported: no usage statistics, no Hugging Face telemetry.
GRADIO_ENVIRONMENT = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_fields(parser)
    parser.add_argument("--data", default=None,
                        help="held-out data to map (default: the validation data of the run's "
                        "config)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only; "
                        "the page has no login, so another address warns)")
    parser.add_argument("--port", type=int, default=7860)
    parser.set_defaults(handler=run_explore)


def run_explore(args: argparse.Namespace) -> None:
    check_port(args.host, args.port)  # before the model and the map, which take a while
    if not is_loopback(args.host):
        print(f"warning: --host {args.host} serves the explorer beyond this machine: it has no "
              "login, so whoever reaches the port can run the model and read the held-out "
              "texts", file=sys.stderr, flush=True)
    os.environ.update(GRADIO_ENVIRONMENT)
    try:  # lazy: gradio and plotly are an optional extra, needed by this command alone
        from textwae.explore.page import build_page, serve
    except ModuleNotFoundError as error:
        if error.name not in EXTRA_MODULES:
            raise
        raise UsageError(MISSING_EXTRA) from error

    with warnings_to_stderr():
        model = load_model(args)
        examples = held_out(args, data_config(model.config, args))
        print(f"encoding {len(examples):,} held-out units for the map ...", file=sys.stderr)
        explorer = Explorer(model, build_latent_map(model, examples), str(args.model))
    page = build_page(explorer)
    where = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving the explorer at http://{where}:{args.port}/ (Ctrl-C stops it)",
          file=sys.stderr, flush=True)
    serve(page, args.host, args.port)
    print("the explorer has stopped", file=sys.stderr)


def check_port(host: str, port: int) -> None:
    """A port this command can listen on, or a UsageError that says what to change."""
    if not 0 < port < 65536:
        raise UsageError(f"--port must lie in 1..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as error:
            raise UsageError(f"--host {host!r} is not an address of this machine") from error
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {host} is in use: pick another with "
                                 "--port") from error
            raise UsageError(f"cannot serve on {host}:{port}: {error.strerror}") from error
