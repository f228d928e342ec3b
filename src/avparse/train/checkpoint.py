"""Resumable training state (``checkpoint.pt``): save after every epoch, load to resume.

The state holds the model, optimiser and scheduler, the epoch, every rank's RNG states, the best
epoch so far and the epoch log, so a resumed run continues bit-identically. It is written
atomically and read with ``torch.load(weights_only=True)`` (no code is executed).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avparse.errors import AvparseError, unreadable_state
from avparse.utils.atomic import atomic_path


@dataclass
class Best:
    """The best epoch so far by the task's selection metric (higher wins)."""

    score: float = float("-inf")
    epoch: int = 0
    val: dict[str, float] = field(default_factory=dict)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's Python, numpy, torch (and CUDA) RNG states, as tensors and plain data."""
    np_state: tuple[Any, ...] = np.random.get_state()  # type: ignore[assignment]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    epoch: int,
    rng: list[dict[str, Any]],
    best: Best,
    log: list[dict[str, Any]],
) -> None:
    """Write the resumable state after ``epoch``, atomically."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "rng": rng,
        "best_score": best.score,
        "best_epoch": best.epoch,
        "best_val": best.val,
        "log": json.dumps(log),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


@dataclass
class Resumed:
    """What a checkpoint restores besides the torch objects."""

    epoch: int
    best: Best
    log: list[dict[str, Any]]
    rng: list[dict[str, Any]]


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> Resumed:
    """Restore ``model``, ``optimizer`` and ``scheduler`` from ``path``; one line if unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        best = Best(float(state["best_score"]), int(state["best_epoch"]), dict(state["best_val"]))
        log = [dict(r) for r in json.loads(state["log"])]
        return Resumed(int(state["epoch"]), best, log, list(state["rng"]))
    except Exception as exc:  # unpickling, missing keys, shapes of another model
        raise AvparseError(
            f"{path}: cannot read resumable checkpoint ({unreadable_state(exc)})"
        ) from None
