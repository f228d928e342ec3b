"""The training recipe (reference section 6): one dataclass, presets, optimiser and schedule.

Torch is imported only by the functions that build torch objects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avparse.errors import AvparseError
from avparse.utils.jsonio import from_mapping, read_json_object

if TYPE_CHECKING:
    import torch


@dataclass
class TrainConfig:
    """Everything about a run except the architecture; flags and ``--set`` override fields."""

    task: str = "llp"
    loss: str = "valor"
    """``han`` (weak labels), ``valor`` (segment harvests) or ``valor-video`` (video harvests)."""
    han_guided: bool = True
    """``han`` loss: add the original HAN's guided BCE on audio / (smoothed) visual video probs."""
    epochs: int = 60
    batch_size: int = 64
    """Global batch; under DDP each rank takes batch_size / world_size."""
    lr: float = 1e-4
    lr_min: float = 1e-6
    warmup: int = 10
    weight_decay: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8
    clip_grad: float = 1.0
    seed: int = 1000
    eval_batch_size: int = 256
    deterministic: bool = True

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.epochs < 1 or self.batch_size < 1 or self.warmup < 0:
            raise AvparseError("epochs and batch_size must be positive and warmup >= 0")
        if self.lr <= 0 or self.lr_min < 0:
            raise AvparseError(
                f"lr must be positive and lr_min >= 0 (got {self.lr}, {self.lr_min})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "recipe") -> TrainConfig:
        return from_mapping(cls, data, where, "training")


RECIPES: dict[str, dict[str, Any]] = {
    "han": {"loss": "han", "lr": 1e-4, "lr_min": 1e-6, "seed": 1000},
    "valor": {"loss": "valor", "lr": 1e-4, "lr_min": 1e-6, "seed": 1000},
    "valor+": {"loss": "valor", "lr": 3e-4, "lr_min": 3e-6, "seed": 64},
    "valor++": {"loss": "valor", "lr": 3e-4, "lr_min": 3e-6, "seed": 87},
    "tiny": {
        "loss": "valor",
        "lr": 1e-3,
        "lr_min": 1e-5,
        "seed": 0,
        "epochs": 3,
        "batch_size": 8,
        "warmup": 1,
    },
}
"""Training defaults per preset (same names as ``avparse.model.config.PRESETS``)."""


def recipe(preset: str | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    data: dict[str, Any] = {}
    if preset is not None:
        if preset not in RECIPES:
            raise AvparseError(f"unknown preset {preset!r} (known: {', '.join(RECIPES)})")
        data.update(RECIPES[preset])
    data.update(overrides or {})
    return TrainConfig.from_dict(data)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON recipe ``{"preset": ..., "model": {...}, "train": {...}}`` (all keys optional)."""
    path = Path(path)
    data = read_json_object(path, "config file")
    unknown = sorted(set(data) - {"preset", "model", "train"})
    if unknown:
        raise AvparseError(f"{path}: unknown key {unknown[0]!r} (use preset, model, train)")
    return data


def learning_rate(epoch: int, cfg: TrainConfig) -> float:
    """Learning rate of 1-based ``epoch``: linear warm-up, then cosine down to ``lr_min``."""
    if epoch < cfg.warmup:
        return epoch / cfg.warmup * cfg.lr
    span = max(cfg.epochs - cfg.warmup, 1)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (
        1 + math.cos(math.pi * (epoch - cfg.warmup) / span)
    )


def build_optimizer(
    params: Any, cfg: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with the recipe's settings and a per-epoch schedule (step once per epoch)."""
    import torch

    opt = torch.optim.AdamW(
        params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    # LambdaLR's factor at step k is the lr of 1-based epoch k + 1, relative to cfg.lr.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _Factor(cfg))
    return opt, sched


class _Factor:
    """Schedule factor holding plain numbers, so the scheduler's state dict (which keeps the
    callable's ``__dict__``) loads with ``torch.load(weights_only=True)``."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.lr, self.lr_min = float(cfg.lr), float(cfg.lr_min)
        self.warmup, self.epochs = int(cfg.warmup), int(cfg.epochs)

    def __call__(self, step: int) -> float:
        cfg = TrainConfig(lr=self.lr, lr_min=self.lr_min, warmup=self.warmup, epochs=self.epochs)
        return learning_rate(step + 1, cfg) / self.lr
