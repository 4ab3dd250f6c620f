"""torch.distributed in one place: who am I, gather codes with gradients, wait for the others.

The library only asks whether a process group exists; the script (`train.py` under torchrun)
creates it, so every helper here is a no-op in a single process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist

from textwae.errors import TextWAEError


class PeerLost(TextWAEError):
    """Another process of the group stopped (it reports why); this one stops too."""

    exit_status = 1  # not this process's input: the failure is the other's


def lost_peer(error: BaseException) -> bool:
    """Whether `error` is a collective failing because another process of the group ended."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and "gloo" in str(error))


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def barrier() -> None:
    if rank_and_world()[1] > 1:
        dist.barrier()


class _GatherRows(torch.autograd.Function):
    """all_gather of rows whose count may differ by rank, with a backward that sums the
    gradient of the gathered tensor over ranks and returns this rank's rows."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        rank, world = rank_and_world()
        sizes = gather_rows(torch.tensor(x.shape[0], device=x.device)).tolist()  # rows per rank
        padded = x.new_zeros((max(sizes), *x.shape[1:]))
        padded[: x.shape[0]] = x
        rows = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(rows, padded)
        ctx.rank, ctx.sizes = rank, sizes
        return torch.cat([row[:size] for row, size in zip(rows, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's statistic depends on these rows
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows (N_r, ...) so a batch statistic sees the global batch.

    Gradients flow back to each rank's own rows: every rank computes the same statistic, the
    backward sums their gradients, and DDP's averaging divides the sum again.
    """
    if rank_and_world()[1] == 1:
        return x
    return _GatherRows.apply(x)


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over ranks, so a module trained outside DDP (the
    WAE-GAN discriminator) takes the same step on every rank and stays the same."""
    world = rank_and_world()[1]
    if world == 1:
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """(W, ...) stack of every rank's tensor of one shape, without gradients (e.g. RNG states)."""
    world = rank_and_world()[1]
    if world == 1:
        return x[None]
    home = x.device
    if dist.get_backend() == "nccl":  # nccl moves GPU tensors only (RNG states live on CPU)
        x = x.to(torch.device("cuda", torch.cuda.current_device()))
    rows = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(rows, x)
    return torch.stack(rows).to(home)


def broadcast_float(value: float) -> float:
    """Rank 0's value on every rank, so ranks agree on decisions such as the time budget."""
    if rank_and_world()[1] == 1:
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.item()
