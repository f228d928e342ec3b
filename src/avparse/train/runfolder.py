"""The run folder of ``avparse train``: its files, its status, and the rules for reusing it.

::

    run.json           status (running | finished | failed), preset, model and training configs
    checkpoint.pt      resumable state (see avparse.train.checkpoint)
    log.jsonl          one JSON record per epoch (losses, lr, val scores, seconds)
    model/             best model in our folder format (config.json + model.safetensors)
    test_metrics.json  scores of the best model on the test split
    tensorboard/       optional event files

A folder holding a run is never silently reused: a new run needs ``--overwrite``, a resumed one
must have the saved settings (the changed ones are named), and ``--resume`` needs a run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError
from avparse.model.config import ModelConfig
from avparse.train.recipe import (
    DEFAULT_PRESET,
    TrainConfig,
    changed_fields,
    named_preset,
    resolve_configs,
    resolve_preset,
)
from avparse.utils.atomic import prepare_output_folder, write_json
from avparse.utils.jsonio import read_json_object

RUN_FILE = "run.json"
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
MODEL_DIR = "model"
TEST_METRICS = "test_metrics.json"
OUR_FILES = (RUN_FILE, CHECKPOINT, LOG, MODEL_DIR, TEST_METRICS, "tensorboard")


def read_run(out: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run folder, or None."""
    path = Path(out) / RUN_FILE
    if not path.is_file():
        return None
    return read_json_object(path, "run file")


def run_configs(out: str | Path) -> tuple[ModelConfig, TrainConfig, str | None]:
    """Configs of an existing run folder (0.1's run.json files included)."""
    run = read_run(out)
    if run is None:
        raise AvparseError(f"{out}: no {RUN_FILE} to resume from")
    where = f"{out}/{RUN_FILE}"
    for key in ("model", "train"):
        if not isinstance(run.get(key), dict):
            raise AvparseError(f"{where}: {key!r} must be a JSON object")
    return (
        ModelConfig.from_dict(run["model"], where),
        TrainConfig.from_dict(run["train"], where),
        run.get("preset"),
    )


def run_state(out: str | Path, model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    """``none`` (no run in ``out``), ``finished`` or ``unfinished`` (a run with these settings),
    or ``other`` (a run with other settings)."""
    if read_run(out) is None:
        return "none"
    saved_model, saved_train, _ = run_configs(out)
    if changed_fields((saved_model, saved_train), (model_cfg, train_cfg)):
        return "other"
    return "finished" if (read_run(out) or {}).get("status") == "finished" else "unfinished"


def default_out(preset: str | None, config_file: str | Path | None = None) -> Path:
    """``runs/PRESET``, the preset being the flag's, else the config file's, else valor."""
    return Path("runs") / resolve_preset(preset, config_file)


def configs_for(
    out: str | Path,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    sets: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    notes: list[str] | None = None,
) -> tuple[ModelConfig, TrainConfig, str]:
    """The settings a run in ``out`` uses: resolved from preset < file < flags < ``--set``, or,
    when resuming, the saved ones (settings given again are applied on top of the saved
    configs, so :func:`prepare` can name exactly what they change)."""
    given = preset is not None or config_file is not None or bool(sets)
    given = given or any(v is not None for v in (flags or {}).values())
    if resume and not overwrite:
        run = read_run(out)
        if run is None:
            raise AvparseError(
                f"{out}: no run to resume (no {RUN_FILE}); check --out, or drop --resume"
            )
        model_cfg, train_cfg, saved = run_configs(out)
        saved = saved or DEFAULT_PRESET
        if not given:
            return model_cfg, train_cfg, saved
        if named_preset(preset, config_file) in (None, saved):
            return resolve_configs(saved, config_file, flags, sets, base=(model_cfg, train_cfg))
    return resolve_configs(preset, config_file, flags, sets, notes=notes)


def prepare(
    out: Path,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    resume: bool,
    overwrite: bool,
    saved_configs: Callable[[Path], tuple[Any, Any, Any]] | None = None,
) -> str:
    """Check ``out`` against the run it may hold (rank 0). Returns what to do: ``new``,
    ``resume``, ``finished`` (resume of a finished run: nothing to train) or ``overwrite``.

    ``saved_configs`` reads the configs saved in ``out`` (default :func:`run_configs`, the
    student's); the temporal teacher's runs give their own reader."""
    run = read_run(out) if out.is_dir() else None
    if run is None and resume and not overwrite:
        raise AvparseError(
            f"{out}: no run to resume (no {RUN_FILE}); check --out, or drop --resume"
        )
    prepare_output_folder(out)
    if overwrite:
        return "overwrite" if run is not None or (out / CHECKPOINT).exists() else "new"
    if run is None:
        return "new"
    status = run.get("status")
    if not resume:
        state = {"finished": "a finished", "failed": "a failed"}.get(str(status), "an unfinished")
        hint = "--overwrite to replace it" + ("" if status == "finished" else " or --resume")
        raise AvparseError(f"{out}: holds {state} run; use {hint}")
    saved_model, saved_train, _ = (saved_configs or run_configs)(out)
    diffs = changed_fields((saved_model, saved_train), (model_cfg, train_cfg))
    if diffs:
        raise AvparseError(
            f"{out}: --resume continues the run with its saved settings, but these differ: "
            f"{', '.join(diffs)}; drop them or use --overwrite"
        )
    return "finished" if status == "finished" else "resume"


def clear(out: Path) -> None:
    """Remove the files of a previous run (``--overwrite``); other files stay."""
    for name in OUR_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_status(out: Path, status: str, **fields: Any) -> None:
    """Update ``run.json`` (rank 0): the status and any extra fields."""
    write_json(out / RUN_FILE, {**(read_run(out) or {}), "status": status, **fields})
