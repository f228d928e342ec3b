"""Student checkpoints: our model folders, published ``checkpoint_best.pt`` files, hub ids.

Our format is a folder with ``config.json`` (the :class:`ModelConfig`, vocabulary and feature
kinds included) and ``model.safetensors``, so the folder alone rebuilds the network. A published
``.pt`` is a bare state dict and needs the preset it was trained with. Resumable training
checkpoints (optimiser, RNG states) are separate files written by ``avparse.train``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from avparse.errors import AvparseError, first_line, require, unreadable_state
from avparse.model.config import ModelConfig, model_config
from avparse.model.han import HAN
from avparse.utils.atomic import atomic_path

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_student(model: torch.nn.Module, config: ModelConfig, folder: str | Path) -> Path:
    """Write ``folder/config.json`` and ``folder/model.safetensors``, each atomically.

    The weights are written first, so a folder with a config always has its weights.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "avparse": "student"})
    config.save(folder / CONFIG_FILE)
    return folder


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel wrappers."""
    return getattr(model, "module", model)


def clean_state_dict(state: Any, where: str) -> dict[str, torch.Tensor]:
    """Accept a bare state dict, a ``{"model": sd}`` wrapper, and a ``module.`` prefix."""
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise AvparseError(f"{where}: not a state dict (got {type(state).__name__})")
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise AvparseError(f"{where}: entry {key!r} is not a tensor")
        out[key.removeprefix("module.")] = value
    return out


def _names(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:2])
    return shown + (f" and {len(keys) - 2} more" if len(keys) > 2 else "")


def state_layout(state: Mapping[str, torch.Tensor]) -> str | None:
    """``valor`` or ``uwav``: whose network a state dict's key names are from (None: neither)."""
    if "fc_v.weight" in state or "fc_a.weight" in state:
        return "valor"
    if any(k.startswith("fc_a.layers.") for k in state):
        return "uwav"
    return None


def fitting_presets(
    state: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None
) -> list[str]:
    """Presets whose network has exactly ``state``'s keys and shapes (built on the meta device,
    so no memory is spent; the architecture keys of ``overrides`` are not applied)."""
    from avparse.model.config import PRESETS

    ignored = ("arch", "proj_layers", "mmil_layers", "motion_feature", "name")
    over = {k: v for k, v in (overrides or {}).items() if k not in ignored}
    fits = []
    for name in PRESETS:
        try:
            with torch.device("meta"):
                own = HAN(model_config(name, over)).state_dict()
        except AvparseError:
            continue
        if set(own) == set(state) and all(own[k].shape == state[k].shape for k in own):
            fits.append(name)
    return fits


def _hint(state: Mapping[str, torch.Tensor], config: ModelConfig, overrides: Any) -> str:
    """Which preset (or at least which layout) the state dict fits, for a load error."""
    fits = [p for p in fitting_presets(state, overrides) if p != config.name]
    if fits:
        return f"; it fits preset {' / '.join(fits)}"
    layout = state_layout(state)
    if layout is not None and layout != config.arch:
        names = {"valor": "VALOR's", "uwav": "UWAV's"}
        return f"; it is {names[layout]} network (--set arch={layout})"
    return ""


def load_state(
    model: HAN,
    state: Mapping[str, torch.Tensor],
    where: str,
    overrides: Mapping[str, Any] | None = None,
) -> None:
    """Load ``state`` strictly; a mismatch is one line naming the missing and the unexpected
    keys (or the first key of another shape) and the preset the state dict fits."""
    own = model.state_dict()
    config = model.config
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    what = f"preset {config.name!r} ({config.arch} layout)"
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing key{'s' if len(missing) > 1 else ''} {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected key{'s' if len(unexpected) > 1 else ''} {_names(unexpected)}")
        raise AvparseError(
            f"{where}: {'; '.join(parts)} for {what}{_hint(state, config, overrides)}"
        )
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise AvparseError(
                f"{where}: key {key!r} has shape {tuple(state[key].shape)} in the checkpoint "
                f"but {tuple(value.shape)} in the model (wrong preset or --set?)"
                f"{_hint(state, config, overrides)}"
            )
    model.load_state_dict(dict(state), strict=True)


def read_published_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a published ``.pt`` (student or teacher), read safely.

    ``weights_only=True`` always: a file that is not a plain state dict is refused in one line
    that never suggests unpickling it.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AvparseError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # pickle errors, truncated zip files, unsafe objects
        raise AvparseError(f"{path}: {unreadable_state(exc)}") from None
    return clean_state_dict(state, str(path))


def read_weights(weights: Path) -> dict[str, torch.Tensor]:
    """The tensors of a model folder's ``model.safetensors``, or one line naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not weights.is_file():
        raise AvparseError(f"{weights}: weights file not found")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise AvparseError(f"{weights}: cannot read weights ({first_line(exc)})") from None


def load_published(
    path: str | Path, preset: str | None, overrides: dict[str, Any] | None = None
) -> tuple[HAN, ModelConfig]:
    """Load a published ``checkpoint_best.pt`` (plain state dict) into the preset's network."""
    path = Path(path)
    if preset is None:
        raise AvparseError(f"{path}: a .pt checkpoint holds weights only; pass --preset")
    config = model_config(preset, overrides)
    state = read_published_state(path)
    model = HAN(config)
    load_state(model, state, str(path), overrides)
    return model, config


def load_folder(folder: str | Path) -> tuple[HAN, ModelConfig]:
    """Load a model folder in our format."""

    folder = Path(folder)
    config = ModelConfig.load(folder / CONFIG_FILE)
    weights = folder / WEIGHTS_FILE
    model = HAN(config)
    load_state(model, read_weights(weights), str(weights))
    return model, config


def resolve_model_folder(path_or_hub_id: str | Path) -> Path:
    """A local model folder, or a hub id (``org/name``) downloaded with ``snapshot_download``.

    Honours ``HF_HUB_OFFLINE``: offline, only a cached snapshot is used.
    """
    path = Path(path_or_hub_id)
    if path.exists():
        if not (path / CONFIG_FILE).is_file():
            inner = path / "model"  # a training run folder holds its model there
            hint = f"; {inner} is one" if (inner / CONFIG_FILE).is_file() else ""
            raise AvparseError(f"{path}: not a model folder (no {CONFIG_FILE}){hint}")
        return path
    text = str(path_or_hub_id)
    if text.count("/") != 1 or text.startswith((".", "/")) or text.endswith((".pt", ".pth")):
        raise AvparseError(f"{text}: no such file or folder")
    # ``org/name`` is a hub id or a mistyped local path: the message says both, folder first
    missing = f"{text}: no such file or folder"
    try:
        hub = require("huggingface_hub", "hub")
    except AvparseError:
        raise AvparseError(
            f"{missing} (a hub id needs huggingface_hub: pip install 'avparse[hub]')"
        ) from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        local = hub.snapshot_download(
            text, allow_patterns=[CONFIG_FILE, WEIGHTS_FILE], local_files_only=offline
        )
    except Exception as exc:
        why = (
            "offline (HF_HUB_OFFLINE is set) and not in the local hub cache"
            if offline
            else first_line(exc)
        )
        raise AvparseError(f"{missing}, nor a model on the hub ({why})") from None
    folder = Path(local)
    if not (folder / CONFIG_FILE).is_file():
        raise AvparseError(f"{text}: hub repository has no {CONFIG_FILE} (not an avparse model)")
    return folder


def load_student(
    path_or_hub_id: str | Path,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[HAN, ModelConfig]:
    """Load a student from a model folder, a hub id, or a published ``.pt`` (needs ``preset``).

    Returns the model in eval mode and its config.
    """
    path = Path(path_or_hub_id)
    if path.is_file():
        model, config = load_published(path, preset, overrides)
        return model.eval(), config
    if preset is not None or overrides:
        raise AvparseError(
            f"{path_or_hub_id}: --preset describes a published .pt checkpoint; a model folder "
            "brings its own config (drop it)"
        )
    model, config = load_folder(resolve_model_folder(path_or_hub_id))
    return model.eval(), config
