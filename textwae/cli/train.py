"""`textwae train` (train.py): train a run directory, or resume one."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed

from textwae.cli.common import UsageError, warnings_to_stderr
from textwae.config.loading import load_config, load_run_config
from textwae.config.schema import Config
from textwae.distributed import PeerLost, lost_peer
from textwae.training.pipeline import train

DEFAULT_CONFIG = Path("configs/default.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="experiment YAML (default: configs/default.yaml if present)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default: runs/CONFIG-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last saved state")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="e.g. train.max_steps=1000 data.train=corpus.txt")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    if args.resume:
        if args.out is None or args.config is not None:
            raise UsageError("--resume needs --out RUN and takes its config from RUN/config.yaml")
        config = load_run_config(args.out / "config.yaml", overrides=args.overrides)
        out = args.out
    else:
        config_path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
        config = load_config(*[config_path] if config_path else [], overrides=args.overrides)
        stem = config_path.stem if config_path else "default"
        out = args.out or Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    local_rank = _start_distributed(config)
    if local_rank is not None and args.out is None:
        raise UsageError("under torchrun, name the run directory with --out so every process "
                         "agrees")
    try:
        with warnings_to_stderr():
            metrics = train(config, out, resume=args.resume)
        if local_rank is not None:  # no rank closes its connections while another still talks
            torch.distributed.barrier()
    except RuntimeError as error:
        if local_rank is None or not lost_peer(error):
            raise
        raise PeerLost(f"process {local_rank} stops: another process of this torchrun run "
                       "ended (its own message says why)") from error
    finally:
        if local_rank is not None:
            torch.distributed.destroy_process_group()
    if local_rank in (None, 0):
        print(json.dumps({"run": str(out), **{k: round(v, 4) for k, v in metrics.items()}}))


def _start_distributed(config: Config) -> int | None:
    """Under torchrun (WORLD_SIZE > 1): join the process group, nccl on GPUs, gloo on CPUs,
    and give each process its own GPU. Returns the local rank, or None in one process.

    The environment is read here, in the script, never by the library.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = config.train.device.startswith("cuda")
    if on_gpu:
        config.train.device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group("nccl" if on_gpu else "gloo")
    return local_rank
