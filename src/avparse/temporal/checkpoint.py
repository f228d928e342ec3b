"""Teacher model folders, UWAV's published ``.pt`` state dicts, and run folders.

Our format is the student's: a folder with ``config.json`` (:class:`TeacherConfig`) and
``model.safetensors``. A ``checkpoint_best.pt`` of UWAV's ``main_pretrain.py`` is a bare state
dict with the same keys (module tree of :mod:`avparse.temporal.network`); it needs the preset it
was trained with and is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avparse.errors import AvparseError
from avparse.model.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    read_published_state,
    read_weights,
    unwrap,
)
from avparse.temporal.config import TeacherConfig, teacher_config
from avparse.temporal.network import TemporalTeacher
from avparse.utils.atomic import atomic_path

RUN_MODEL_DIR = "model"
"""The best teacher inside a run folder of ``avparse teacher train``."""


def save_teacher(model: torch.nn.Module, config: TeacherConfig, folder: str | Path) -> Path:
    """Write ``folder/model.safetensors`` then ``folder/config.json``, each atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "avparse": "temporal-teacher"})
    config.save(folder / CONFIG_FILE)
    return folder


def load_state(model: TemporalTeacher, state: dict[str, torch.Tensor], where: str) -> None:
    """Load strictly; a mismatch is one line naming the first offending key."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    for keys, what in ((missing, "missing"), (unexpected, "unexpected")):
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            raise AvparseError(f"{where}: {what} key {keys[0]!r}{more} for this teacher config")
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise AvparseError(
                f"{where}: key {key!r} has shape {tuple(state[key].shape)} in the checkpoint "
                f"but {tuple(value.shape)} in the teacher (wrong --preset or --set?)"
            )
    model.load_state_dict(state, strict=True)


def load_published(
    path: str | Path, preset: str | None, overrides: dict[str, Any] | None = None
) -> tuple[TemporalTeacher, TeacherConfig]:
    """A UWAV ``checkpoint_best.pt`` (plain state dict) in the preset's network."""
    path = Path(path)
    if preset is None:
        raise AvparseError(f"{path}: a .pt checkpoint holds weights only; pass --preset (uwav)")
    config = teacher_config(preset, overrides)
    model = TemporalTeacher(config)
    load_state(model, read_published_state(path), str(path))
    return model, config


def load_folder(folder: str | Path) -> tuple[TemporalTeacher, TeacherConfig]:
    """A teacher model folder in our format."""
    folder = Path(folder)
    config = TeacherConfig.load(folder / CONFIG_FILE)
    weights = folder / WEIGHTS_FILE
    model = TemporalTeacher(config)
    load_state(model, read_weights(weights), str(weights))
    return model, config


def load_teacher(
    source: str | Path, preset: str | None = None, overrides: dict[str, Any] | None = None
) -> tuple[TemporalTeacher, TeacherConfig]:
    """A teacher from a run folder (its ``model/``), a model folder, or a ``.pt`` + preset."""
    path = Path(source)
    if path.is_file():
        return load_published(path, preset, overrides)
    if not path.is_dir():
        raise AvparseError(f"{path}: teacher not found (a run folder, model folder or .pt file)")
    if preset is not None or overrides:
        raise AvparseError(f"{path}: --preset and --set apply to .pt checkpoints only")
    if (path / CONFIG_FILE).is_file():
        return load_folder(path)
    if (path / RUN_MODEL_DIR / CONFIG_FILE).is_file():
        return load_folder(path / RUN_MODEL_DIR)
    raise AvparseError(
        f"{path}: no teacher here (no {CONFIG_FILE} or {RUN_MODEL_DIR}/{CONFIG_FILE}; "
        "an unfinished run has no best model yet)"
    )
