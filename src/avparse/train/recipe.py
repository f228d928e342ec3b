"""The training recipe (reference section 6): one dataclass, config resolution, optimiser, schedule.

Preset recipes live beside the architectures in :data:`avparse.model.config.PRESETS`.
:func:`resolve_configs` is the one place where preset < config file < flags < ``--set`` are
merged. Torch is imported only by the functions that build torch objects.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avparse.errors import AvparseError
from avparse.model.config import (
    ModelConfig,
    get_preset,
    model_config,
    parse_value,
)
from avparse.utils.jsonio import from_mapping, read_json_object
from avparse.utils.precision import check_precision
from avparse.utils.text import count

if TYPE_CHECKING:
    import torch

DEFAULT_PRESET = "valor"

UWAV_WEIGHTINGS = ("paper", "code", "fixed")
"""Class-balanced weights of the ``uwav`` loss (:func:`avparse.train.uwav.class_weights`)."""


@dataclass
class TrainConfig:
    """Everything about a run except the architecture; flags and ``--set`` override fields."""

    task: str = "llp"
    loss: str = "valor"
    """A key of ``avparse.train.losses.LOSSES`` (``han``, ``valor``, ``valor-video``, ``uwav``,
    ...)."""
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
    accept_harvest_mismatch: bool = False
    """Train on harvests whose positives lie outside the clips' weak labels (refused otherwise:
    see :mod:`avparse.data.agreement`)."""
    harvest: str = "frame"
    """Whose segment labels the ``valor`` / ``uwav`` losses read: ``frame`` (the CLIP / CLAP
    teachers', ``avparse harvest``) or ``temporal`` (UWAV's temporal teacher's, ``avparse teacher
    label``, in ``ROOT/temporal``)."""
    uwav_soft: bool = True
    """``uwav`` loss: soft segment targets ``sigmoid(margin / T)`` (false: the hard harvest)."""
    uwav_temperature: float = 2.0
    """``uwav`` loss: ``T`` of the soft targets (1: the stored soft labels)."""
    uwav_reweight: bool = True
    """``uwav`` loss: class-balanced re-weighting of the segment loss."""
    uwav_weights: str = "paper"
    """``paper`` (``W (1 - f)``, ``f``), ``code`` (the published code's: C times those) or
    ``fixed`` (7, 1); see :func:`avparse.train.uwav.class_weights`."""
    uwav_w: float = 0.5
    """``uwav`` loss: ``W`` of the ``paper`` and ``code`` weights."""
    uwav_mixup: bool = True
    """``uwav`` loss: feature mixup of random segment pairs, ``lam ~ Beta(alpha, alpha)``."""
    uwav_alpha: float = 1.7
    uwav_ceil: bool = False
    """``uwav`` loss: ceil the mixup targets (the paper's AVE variant)."""
    precision: str = "float32"
    """Arithmetic of the forward passes: ``float32`` or ``bfloat16`` (autocast; master weights,
    gradients and the optimiser's state stay float32), see :mod:`avparse.utils.precision`."""
    compile: bool = False
    """Run the model through ``torch.compile`` (eager after a one-line note where it cannot)."""

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise AvparseError(f"{f.name} must be a finite number, got {value}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1 or self.warmup < 0:
            raise AvparseError("epochs and batch sizes must be positive and warmup >= 0")
        if self.lr <= 0 or self.lr_min < 0:
            raise AvparseError(
                f"lr must be positive and lr_min >= 0 (got {self.lr}, {self.lr_min})"
            )
        if self.weight_decay < 0 or self.eps <= 0 or self.clip_grad <= 0:
            raise AvparseError("weight_decay must be >= 0, eps and clip_grad positive")
        if not all(0 <= b < 1 for b in self.betas):
            raise AvparseError(f"betas must be in [0, 1), got {self.betas}")
        if self.harvest not in ("frame", "temporal"):
            raise AvparseError(f"harvest must be frame or temporal, got {self.harvest!r}")
        check_precision(self.precision)
        if self.uwav_weights not in UWAV_WEIGHTINGS:
            known = ", ".join(UWAV_WEIGHTINGS)
            raise AvparseError(f"uwav_weights must be one of {known}, got {self.uwav_weights!r}")
        if self.uwav_temperature <= 0 or self.uwav_w <= 0 or self.uwav_alpha < 0:
            raise AvparseError(
                "uwav_temperature and uwav_w must be positive and uwav_alpha >= 0 (got "
                f"{self.uwav_temperature}, {self.uwav_w}, {self.uwav_alpha})"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)  # as JSON stores it, so saved and fresh compare equal
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "recipe") -> TrainConfig:
        return from_mapping(cls, data, where, "training")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 1-based ``epoch`` under this recipe."""
        return learning_rate(
            epoch, lr=self.lr, lr_min=self.lr_min, warmup=self.warmup, epochs=self.epochs
        )


def recipe(preset: str | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset's training recipe (defaults without one) with ``overrides``."""
    data: dict[str, Any] = {}
    if preset is not None:
        data.update(get_preset(preset).recipe)
    data.update(overrides or {})
    return TrainConfig.from_dict(data)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON recipe ``{"preset": ..., "model": {...}, "train": {...}}`` (all keys optional)."""
    path = Path(path)
    data = read_json_object(path, "config file")
    unknown = sorted(set(data) - {"preset", "model", "train"})
    if unknown:
        raise AvparseError(f"{path}: unknown key {unknown[0]!r} (use preset, model, train)")
    for key in ("model", "train"):
        if not isinstance(data.get(key, {}), dict):
            raise AvparseError(f"{path}: {key!r} must be a JSON object")
    return data


def split_sets(items: list[str], preset: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set KEY=VALUE`` items -> (model overrides, training overrides), typed like the field."""
    base_model, base_train = model_config(preset), recipe(preset)
    model_keys = {f.name for f in fields(ModelConfig)} | {"audio_dim", "visual_dim", "motion_dim"}
    train_keys = {f.name for f in fields(TrainConfig)}
    model_over: dict[str, Any] = {}
    train_over: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise AvparseError(f"--set {item!r}: expected KEY=VALUE")
        try:
            if key in model_keys:
                model_over[key] = parse_value(text, getattr(base_model, key))
            elif key in train_keys:
                train_over[key] = parse_value(text, getattr(base_train, key))
            else:
                raise AvparseError(f"--set {item!r}: unknown config field {key!r}")
        except ValueError:
            raise AvparseError(f"--set {item!r}: cannot parse value {text!r}") from None
    return model_over, train_over


def model_sets(items: list[str], preset: str | None) -> dict[str, Any]:
    """Model-config overrides only (``avparse evaluate`` of a published .pt checkpoint)."""
    model_over, train_over = split_sets(items, preset)
    if train_over:
        raise AvparseError(f"--set {next(iter(train_over))!r} is a training field, not a model one")
    return model_over


def named_preset(preset: str | None, config_file: str | Path | None) -> str | None:
    """The preset the settings name: the flag's, else the config file's, else None."""
    if preset is None and config_file is not None:
        named = load_config_file(config_file).get("preset")
        preset = None if named is None else str(named)
    return preset


def resolve_preset(preset: str | None, config_file: str | Path | None) -> str:
    """The preset a run uses: the flag, else the config file's, else ``valor``."""
    return named_preset(preset, config_file) or DEFAULT_PRESET


def resolve_configs(
    preset: str | None = None,
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    sets: list[str] | None = None,
    *,
    base: tuple[ModelConfig, TrainConfig] | None = None,
    notes: list[str] | None = None,
) -> tuple[ModelConfig, TrainConfig, str]:
    """Model and training configs from preset < config file < flags < ``--set``.

    ``flags`` are training fields (``None`` values are ignored). ``base`` (a saved run's
    configs) replaces the preset's defaults. Without a vocabulary of its own the model gets the
    task's (``--task ave``: the 28 AVE classes). A warm-up the settings did not give that is
    longer than a quarter of the run is shortened (:func:`fit_warmup`); ``notes`` receives the
    line saying so.
    """
    file = load_config_file(config_file) if config_file is not None else {}
    name = resolve_preset(preset, config_file)
    model_over: dict[str, Any] = dict(file.get("model", {}))
    train_over: dict[str, Any] = dict(file.get("train", {}))
    train_over.update({k: v for k, v in (flags or {}).items() if v is not None})
    set_model, set_train = split_sets(list(sets or []), name)
    model_over.update(set_model)
    train_over.update(set_train)
    if base is not None:
        train_cfg = TrainConfig.from_dict({**base[1].to_dict(), **train_over})
        return model_config(None, {**base[0].to_dict(), **model_over}), train_cfg, name
    train_cfg = recipe(name, train_over)
    if "warmup" not in train_over:
        train_cfg, note = fit_warmup(train_cfg)
        if note and notes is not None:
            notes.append(note)
    if "vocabulary" not in model_over and "class_names" not in model_over:
        from avparse.train.tasks import get_task

        model_over["vocabulary"] = get_task(train_cfg.task).vocabulary
    return model_config(name, model_over), train_cfg, name


WARMUP_SHARE = 4
"""A preset's warm-up may take at most 1/WARMUP_SHARE of the run's epochs (at least one)."""


def fit_warmup(cfg: TrainConfig) -> tuple[TrainConfig, str | None]:
    """``cfg`` with its warm-up shortened to a quarter of the run (at least 1 epoch) when it is
    longer, and the note saying so; unchanged (None) otherwise. A preset's 10 warm-up epochs on
    an 8-epoch run would otherwise end the run at 80 % of the peak rate with no decay."""
    most = max(1, cfg.epochs // WARMUP_SHARE)
    if cfg.warmup <= most:
        return cfg, None
    note = (
        f"warm-up shortened from {cfg.warmup} to {count(most, 'epoch')} (a quarter of the "
        f"{cfg.epochs}-epoch run, so the learning rate decays); --set warmup=N chooses it"
    )
    return dataclasses.replace(cfg, warmup=most), note


def changed_fields(
    saved: tuple[ModelConfig, TrainConfig], fresh: tuple[ModelConfig, TrainConfig]
) -> list[str]:
    """``field (saved -> fresh)`` for every setting that differs, model fields first."""
    out = []
    pairs = ((saved[0].to_dict(), fresh[0].to_dict()), (saved[1].to_dict(), fresh[1].to_dict()))
    for a, b in pairs:
        for key in a:
            if a[key] == b[key]:
                continue
            if key == "class_names":
                out.append(f"class_names ({len(a[key])} -> {len(b[key])} classes)")
            else:
                out.append(f"{key} ({a[key]!r} -> {b[key]!r})")
    return out


def learning_rate(epoch: int, *, lr: float, lr_min: float, warmup: int, epochs: int) -> float:
    """Learning rate of 1-based ``epoch``: linear warm-up, then cosine down to ``lr_min``."""
    if epoch < warmup:
        return epoch / warmup * lr
    span = max(epochs - warmup, 1)
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * (epoch - warmup) / span))


def build_optimizer(
    params: Any, cfg: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with the recipe's settings and a per-epoch schedule (step once per epoch).

    The fused implementation where torch has it for the device (the same algorithm; its
    float rounding differs from the per-parameter loop's by about one unit in the last place).
    """
    import torch

    params = list(params)
    settings: dict[str, Any] = {
        "lr": cfg.lr,
        "betas": cfg.betas,
        "eps": cfg.eps,
        "weight_decay": cfg.weight_decay,
    }
    try:  # one fused kernel for every parameter (torch >= 2.4 on CPU): the same update, faster
        opt = torch.optim.AdamW(params, **settings, fused=True)
    except RuntimeError:  # an older torch or a device without the fused kernel
        opt = torch.optim.AdamW(params, **settings)
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
        rate = learning_rate(
            step + 1, lr=self.lr, lr_min=self.lr_min, warmup=self.warmup, epochs=self.epochs
        )
        return rate / self.lr
