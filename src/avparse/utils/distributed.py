"""``torchrun`` plumbing shared by training and harvesting: gloo on CPU, nccl on GPU, rank 0 writes.

A plain single process is world size 1 and never initialises a process group. torch is imported
only when a process group is really used, so reading the ranks costs nothing. A process group
that cannot start is an :class:`AvparseError` naming the cause, never a silent single process.

A failing rank stops the job (:class:`_Watch`): once a process group is up, every rank watches a
key in the job's store (the ``torchrun`` rendezvous store at ``MASTER_ADDR:MASTER_PORT``). A rank
whose work raises claims the failure (:func:`claim_failure`: the first claim wins, and only that
rank prints its one line), closes its connections so no peer stays blocked in a collective, and
waits (at most the timeout) for the others to leave. A rank that sees another's failure stops:
:class:`PeerFailed` is raised in its main thread (its atomic writes clean up after themselves,
finished files stay), and if it has not ended within :func:`failure_timeout` seconds (default 60,
``AVPARSE_FAILURE_TIMEOUT``) it exits with status 1 anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
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
    _Watch.start(d)
    return d


def teardown(d: Dist) -> None:
    """Leave the process group (if this process joined one).

    Called from a ``finally`` while an exception propagates, it first claims the failure for
    this rank (before the connections close and the peers see only a lost connection).
    """
    if not d.active:
        return
    error = sys.exception()
    if isinstance(error, PeerFailed) and _Watch.current is not None:
        _Watch.current.handled = True
    elif isinstance(error, Exception):
        claim_failure(error_line(error))
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------- a failing rank stops the job

FAILURE_TIMEOUT_ENV = "AVPARSE_FAILURE_TIMEOUT"
DEFAULT_FAILURE_TIMEOUT = 60.0
POLL_S = 0.2
LINGER_S = 3.0
"""How long a failing rank waits for the others to leave before it exits."""


class PeerFailed(BaseException):
    """Another rank of this job failed; this rank stops without a message of its own.

    Raised asynchronously (like ``KeyboardInterrupt``, and for the same reason a
    ``BaseException``): no ``except Exception`` on the way, such as a batch's per-item error
    handling, may take it for one item's failure."""


def failure_timeout() -> float:
    """Seconds every rank has to stop once one has failed (``AVPARSE_FAILURE_TIMEOUT``)."""
    text = os.environ.get(FAILURE_TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_FAILURE_TIMEOUT
    except ValueError:
        raise AvparseError(f"{FAILURE_TIMEOUT_ENV}={text!r}: expected seconds") from None
    if not value > 0:
        raise AvparseError(f"{FAILURE_TIMEOUT_ENV}={text!r}: must be above 0")
    return value


def error_line(exc: BaseException) -> str:
    """The line a failure is recorded with (an AvparseError's own line, else its first line)."""
    if isinstance(exc, AvparseError):
        return " ".join(str(exc).split())
    return f"{type(exc).__name__}: {first_line(exc)}"


def claim_failure(message: str) -> bool:
    """Record that this rank failed; True when it is the first (it alone prints its line).

    Outside a process group every failure is the first. A rank stopped by another's failure
    (:class:`PeerFailed`, or a collective that lost its peer after the claim) returns False.
    """
    watch = _Watch.current
    if watch is None:
        return True
    return watch.claim(message)


def peer_failure() -> str | None:
    """The failing rank's line when another rank of this job failed, else None."""
    watch = _Watch.current
    return None if watch is None else watch.peer()


def finish_failure() -> None:
    """After a failing rank has printed: close its connections (no peer stays blocked in a
    collective) and give the others, at most the timeout, to stop before it exits."""
    watch = _Watch.current
    if watch is not None:
        watch.finish()


def stop_watching() -> None:
    """This rank's work is over: another rank's failure no longer interrupts it."""
    watch = _Watch.current
    if watch is not None:
        watch.handled = True


class _Watch:
    """One per process under a process group: the failure key and the thread watching it."""

    current: _Watch | None = None

    def __init__(self, d: Dist, store: Any, timeout: float) -> None:
        self.d = d
        self.store = store
        self.timeout = timeout
        prefix = f"avparse/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
        self.failed_key, self.count_key = f"{prefix}/failed", f"{prefix}/failures"
        self.left_key = f"{prefix}/left"
        self.mine: bool | None = None  # True: this rank claimed; False: a peer did
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.signalled = False
        self.handled = False  # this rank is already stopping: no PeerFailed on top of it
        self.left = False

    @classmethod
    def start(cls, d: Dist) -> None:
        if cls.current is not None:
            return
        timeout = failure_timeout()
        try:
            from datetime import timedelta

            import torch.distributed as dist

            store = dist.TCPStore(
                os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                timeout=timedelta(seconds=30), wait_for_workers=False,
            )  # fmt: skip
        except (KeyError, ValueError, RuntimeError, OSError):
            return  # no store to watch (another launcher): torchrun's own teardown remains
        watch = cls(d, store, timeout)
        cls.current = watch
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, watch._raise_in_main)
            # torchrun's agent ends the other ranks with SIGTERM once one has exited: unwind
            # (temporary files removed, the run's status written) instead of dying mid-write
            signal.signal(signal.SIGTERM, watch._on_sigterm)
        threading.Thread(target=watch._run, name="avparse-rank-watch", daemon=True).start()
        atexit.register(watch._leave)

    def claim(self, message: str) -> bool:
        self.handled = True
        with self.lock:
            if self.mine is None:
                try:
                    first = int(self.store.add(self.count_key, 1)) == 1
                    if first:
                        self.store.set(self.failed_key, f"rank {self.d.rank}: {message}")
                except (RuntimeError, OSError):  # the store is gone: say it ourselves
                    first = True
                self.mine = first
            return self.mine

    def peer(self) -> str | None:
        if self.mine:
            return None
        try:
            if not self.store.check([self.failed_key]):
                return None
            return bytes(self.store.get(self.failed_key)).decode("utf-8", "replace")
        except (RuntimeError, OSError):
            return None

    def finish(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            with contextlib.suppress(Exception):  # already broken: nothing left to close
                dist.destroy_process_group()
        self._leave()
        # peers running Python stop at once (PeerFailed) and leave; one blocked in a
        # collective with this rank is freed only when this process ends, so do not wait long
        deadline = time.monotonic() + min(self.timeout, LINGER_S)
        while time.monotonic() < deadline:
            try:
                if int(self.store.add(self.left_key, 0)) >= self.d.world:
                    return
            except (RuntimeError, OSError):
                return
            time.sleep(POLL_S)

    def _leave(self) -> None:
        if not self.left:
            self.left = True
            self.stop.set()
            with contextlib.suppress(RuntimeError, OSError):
                self.store.add(self.left_key, 1)

    def _run(self) -> None:
        while not self.stop.wait(POLL_S):
            try:
                seen = self.store.check([self.failed_key])
            except (RuntimeError, OSError):
                return  # the store went away with the job: nothing left to watch
            if not seen or self.mine:
                continue
            with self.lock:
                if self.mine is None:
                    self.mine = False
            if self.mine:
                continue
            self.signalled = True
            main = threading.main_thread().ident
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                if main is not None and not self.handled:
                    # again until it lands: one raised inside a __del__ is swallowed
                    signal.pthread_kill(main, signal.SIGUSR1)
                if self.stop.wait(min(1.0, max(deadline - time.monotonic(), 0.0))):
                    return
            os._exit(1)  # still blocked after the timeout: stop all the same

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.handled:  # already stopping (or the failing rank lingering): end now
            raise SystemExit(1)
        self.handled = True
        peer = self.peer()
        if peer is None:
            raise KeyboardInterrupt
        raise PeerFailed(peer)

    def _raise_in_main(self, signum: int, frame: Any) -> None:
        if frame is not None and frame.f_code.co_name == "__del__":
            return  # it would be swallowed there ("Exception ignored"): the next signal lands
        if self.signalled and not self.left and not self.handled:
            self.handled = True
            raise PeerFailed(self.peer() or "another rank failed")


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


def on_main(d: Dist, fn: Callable[[], Any], *, share: bool = True) -> Any:
    """Run ``fn`` on rank 0 only; its one-line error raises on every rank; ``share`` sends its
    result to all ranks (else the other ranks get None). Without torchrun it is just ``fn()``."""
    value, error = None, None
    if d.main:
        try:
            value = fn()
        except AvparseError as exc:
            if not d.active:
                raise
            error = str(exc)
    error = broadcast_object(d, error)
    if error is not None:
        raise AvparseError(error)
    if share and d.active:
        value = broadcast_object(d, value)
    return value


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
