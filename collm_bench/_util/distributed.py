"""Data parallelism under ``torchrun`` (DDP semantics: every rank holds the same model).

``torchrun --nproc_per_node N -m collm_bench run ...`` starts N processes. Each one runs the
same pipeline with the same seed, so the models start equal; then

- tuning: every rank takes its share of each global batch (``batch_size`` stays the global
  batch, as the authors' 16 per GPU x 2 GPUs), and the gradients are averaged across ranks
  before the optimiser step, so the models stay equal;
- scoring: every rank scores its shard of the rows (``shard``: padded to a multiple of N as
  ``DistributedSampler`` does), and ``gather`` assembles the scores by row position with the
  padding dropped, so metrics at any world size equal those of one process;
- only rank 0 writes the stage cache and the run records.

Outside ``torchrun`` (no ``WORLD_SIZE`` above 1) every function here is a cheap no-op, and
this module imports torch only when a process group is used.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from collm_bench._util._env_checks import check_launcher_env


def world_size() -> int:
    check_launcher_env()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    check_launcher_env()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    """Whether this process is one of several (and the process group is up)."""
    if world_size() <= 1:
        return False
    init()
    return True


def init() -> None:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); idempotent."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    # The other ranks wait in a collective while rank 0 alone downloads or prepares a dataset:
    # allow for that rather than the default 10 minutes.
    timeout = timedelta(hours=2)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # "cuda" is then this rank's GPU
        dist.init_process_group("nccl", timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)


def finish() -> None:
    """End of a command: wait for every rank, then leave the process group (a rank exiting while
    another still talks to it makes gloo abort the process)."""
    if world_size() <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. a download into a shared cache), then the others;
    when it fails on rank 0, it fails on every rank."""
    if not active():
        yield
        return
    if is_main():
        try:
            yield
        except BaseException:
            agree(False)
            raise
        agree(True)
    else:
        if not agree(None):
            raise RuntimeError("rank 0 failed in a step the other ranks wait for (see its error)")
        yield


def agree(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (so that all ranks take the same branch)."""
    if not active():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(n: int) -> np.ndarray:
    """This rank's positions in ``range(n)``: padded to a multiple of the world size by
    repeating the first positions, then every world-size-th one from this rank's."""
    world = world_size()
    if world <= 1:
        return np.arange(n)
    total = -(-n // world) * world
    padded = np.resize(np.arange(n), total) if n else np.zeros(0, dtype=np.int64)
    return padded[rank()::world]


def gather(positions: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The full array of ``n`` values from every rank's (positions, values); a padded
    duplicate position carries the same value and is written once."""
    if not active():
        out = np.full(n, np.nan)
        out[positions] = values
        return out
    import torch.distributed as dist

    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, (np.asarray(positions), np.asarray(values, dtype=np.float64)))
    out = np.full(n, np.nan)
    for part_positions, part_values in parts:
        out[part_positions] = part_values
    return out


def sharded(n: int, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``compute(positions)`` over ``range(n)``, split across ranks and gathered in order."""
    if not active():
        return np.asarray(compute(np.arange(n)), dtype=np.float64)
    positions = shard(n)
    return gather(positions, compute(positions), n)


def local_part(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """This rank's share of a global batch, and the weight that turns its mean loss into its
    part of the global batch's mean once gradients are averaged across ranks. A batch smaller
    than the world leaves some ranks an empty share (weight 0)."""
    world = world_size()
    if world <= 1:
        return rows, 1.0
    mine = rows[rank()::world]
    return mine, len(mine) * world / len(rows) if len(rows) else 0.0


def average_gradients(parameters: list[Any]) -> None:
    """Average the gradients of ``parameters`` across ranks, in one all-reduce. A parameter
    without a gradient on this rank (an empty share, a branch not taken) counts as zero, so
    every rank reduces the same buffer; one without a gradient on every rank keeps none, so that
    the optimizer leaves it alone as in one process (a module unused at this step, such as
    LLaRA's projector on a text-only step, is not moved by momentum or weight decay)."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    device = parameters[0].device if parameters else "cpu"
    used = torch.tensor([float(p.grad is not None) for p in parameters], device=device)
    dist.all_reduce(used, op=dist.ReduceOp.SUM)
    groups: dict[tuple[Any, Any], list[Any]] = {}  # one buffer per dtype and device
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        groups.setdefault((parameter.dtype, parameter.device), []).append(parameter)
    for group in groups.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group]) / world_size()
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for parameter in group:
            parameter.grad.copy_(flat[offset:offset + parameter.numel()].view_as(parameter.grad))
            offset += parameter.numel()
    for parameter, count in zip(parameters, used.tolist()):
        if count == 0:
            parameter.grad = None


def broadcast_from_main(tensors: Iterable[Any]) -> None:
    """Overwrite ``tensors`` (parameters, buffers such as batch-norm statistics) with rank 0's."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)
