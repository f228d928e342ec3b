"""torch.distributed plumbing for ``torchrun``: gloo on CPU, nccl on GPU, rank 0 writes.

A plain single process is world size 1 and never initialises a process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from avparse.errors import AvparseError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        if device == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local)


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def broadcast_object(d: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (used to share errors and decisions)."""
    if not d.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(d: Dist, obj: Any) -> list[Any]:
    if not d.active:
        return [obj]
    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(d: Dist, values: torch.Tensor) -> torch.Tensor:
    if d.active:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def check_batch(batch_size: int, d: Dist) -> int:
    """Per-rank batch that keeps the recipe's global batch."""
    if batch_size % d.world:
        raise AvparseError(
            f"batch size {batch_size} is not divisible by the {d.world} processes; "
            "choose --batch-size as a multiple of --nproc_per_node"
        )
    return batch_size // d.world
