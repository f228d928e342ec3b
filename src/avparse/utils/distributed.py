"""``torchrun`` plumbing shared by training and harvesting: gloo on CPU, nccl on GPU, rank 0 writes.

A plain single process is world size 1 and never initialises a process group. torch is imported
only when a process group is really used, so reading the ranks costs nothing. A process group
that cannot start is an :class:`AvparseError` naming the cause, never a silent single process.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from avparse.errors import AvparseError, first_line

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Dist:
    """This process's place among the ``torchrun`` processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    """The ranks ``torchrun`` put in the environment (world 1 without it); imports nothing."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return Dist()
        rank = int(os.environ["RANK"])
        return Dist(rank, world, int(os.environ.get("LOCAL_RANK", rank)))
    except (KeyError, ValueError) as exc:
        raise AvparseError(f"torchrun environment is malformed ({exc!r})") from None


def local_device(device: str | None, d: Dist | None = None) -> str | None:
    """Under torchrun a bare ``cuda`` means this process's ``cuda:LOCAL_RANK``."""
    d = d or from_env()
    if not d.active or device != "cuda":
        return device
    return f"cuda:{d.local_rank}"


def setup(device: str = "cpu") -> Dist:
    """Join the process group ``torchrun`` describes (if any); failures are one line."""
    d = from_env()
    if not d.active:
        return d
    import torch.distributed as dist

    if not dist.is_initialized():
        try:
            if device == "cuda":
                import torch

                torch.cuda.set_device(d.local_rank)
            dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        except (RuntimeError, ValueError, OSError) as exc:
            raise AvparseError(
                f"rank {d.rank} of {d.world}: cannot join the torchrun process group "
                f"({first_line(exc)})"
            ) from None
    return d


def teardown(d: Dist) -> None:
    """Leave the process group (if this process joined one)."""
    if d.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(d: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (used to share errors and decisions)."""
    if not d.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(d: Dist, obj: Any) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order."""
    if not d.active:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def gather_state(d: Dist, state: Any) -> list[Any]:
    """Every rank's ``state`` (nested tensors, numbers, strings), in rank order.

    Each state travels as the bytes of ``torch.save``, so tensors of any dtype arrive intact and
    come back through ``torch.load(weights_only=True)``.
    """
    if not d.active:
        return [state]
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return [
        torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
        for b in gather_objects(d, buf.getvalue())
    ]


def all_reduce_sum(d: Dist, values: torch.Tensor) -> torch.Tensor:
    """Sum ``values`` over ranks in place (no-op for one process)."""
    if d.active:
        import torch.distributed as dist

        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def per_rank_batch(batch_size: int, d: Dist) -> int:
    """Per-rank batch that keeps the recipe's global batch."""
    if batch_size % d.world:
        raise AvparseError(
            f"batch size {batch_size} is not divisible by the {d.world} processes; "
            "choose --batch-size as a multiple of --nproc_per_node"
        )
    return batch_size // d.world
