"""The harvest manifest (``harvest.json``): the settings that decide a root's content.

:func:`settings` builds the record of a run; :func:`compare` reads the root's record once and
says what the new settings mean for the files already there. Model sources are recorded
resolved (a local folder as its absolute path, a hub id as the id), so a rerun does not depend on
how a path was spelled or from which folder it was started.

The job writes the record only once the models it needs have loaded (or when it relabels from
saved logits, which needs none), so a run that fails on a model or device never blocks the
corrected rerun.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avparse import __version__
from avparse.errors import AvparseError
from avparse.harvest.outputs import MANIFEST
from avparse.media.decode import WINDOW_SECONDS
from avparse.teachers.loading import resolve_source
from avparse.utils.jsonio import read_json_object

MODEL_KEYS = ("task", "classes", "clip_model", "clap_model", "teacher_inputs", "precision", "span")
"""Settings that change the teachers' features and logits (a change redoes every clip)."""
LABEL_KEYS = ("teacher", "thresholds")
"""Settings that change only the labels (a change relabels from the saved logits)."""
OLD_DEFAULTS = {"teacher_inputs": "0.1", "precision": "float32", "span": "window"}
"""What a record without these keys (written by avparse 0.1, or before whole-video harvests)
was harvested with."""


@dataclass
class Change:
    """What the new settings mean for a root (the result of :func:`compare`)."""

    teachers: str
    """``"same"``, ``"labels"`` (relabel from saved logits) or ``"models"`` (redo all)."""
    redo_motion: bool
    """The R(2+1)D-18 features must be recomputed (other weights or sampling, ``--overwrite``)."""
    record: dict[str, Any]
    """The record to write (a run without ``--r2plus1d`` keeps the root's R(2+1)D-18 entry)."""


def settings(
    *,
    task: str,
    vocabulary: str,
    classes: list[str],
    clip_model: str,
    clap_model: str,
    teacher_inputs: str,
    precision: str,
    teacher: str,
    thresholds: dict[str, list[float]] | None,
    motion: dict[str, Any] | None,
    span: str = "window",
) -> dict[str, Any]:
    """The record of a run's settings (model sources resolved, see the module docstring)."""
    return {
        "avparse": __version__,
        "task": task,
        "vocabulary": vocabulary,
        "classes": list(classes),
        "clip_model": resolve_source(clip_model),
        "clap_model": resolve_source(clap_model),
        "teacher_inputs": teacher_inputs,
        "precision": precision,
        "teacher": teacher,
        "window_seconds": WINDOW_SECONDS,
        "span": span,
        "thresholds": thresholds,
        "motion": motion,
    }


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record with what older records leave out or spell differently made explicit."""
    out = dict(record)
    for key, value in OLD_DEFAULTS.items():
        out.setdefault(key, value)
    for key in ("clip_model", "clap_model"):
        if isinstance(out.get(key), str):
            with contextlib.suppress(AvparseError):  # a folder that has gone: as written
                out[key] = resolve_source(out[key])
    return out


def compare(root: Path, current: dict[str, Any], overwrite: bool) -> Change:
    """Compare ``current`` with the record in ``root`` (read once); refuse what would mix.

    Other models, classes or teacher inputs are refused (another ``--out``, or ``--overwrite``
    to redo all). Other thresholds or teacher mode are refused unless ``--overwrite``, which then
    relabels from the saved logits; a root harvested without thresholds (logits only) is labelled
    without ``--overwrite``. R(2+1)D-18 settings: a run without ``--r2plus1d`` keeps the root's; a
    first request adds features; other settings are refused unless ``--overwrite``, which
    recomputes the R(2+1)D-18 features only.
    """
    path = root / MANIFEST
    record = dict(current)
    if not path.is_file():
        return Change("same", False, record)
    old = _comparable(read_json_object(path, "harvest manifest"))
    changed = [k for k in (*MODEL_KEYS, *LABEL_KEYS) if old.get(k) != current.get(k)]
    models = any(k in MODEL_KEYS for k in changed)
    if not changed:
        teachers = "same"
    elif old.get("thresholds") is None and not models:
        teachers = "labels"  # logits only so far (no thresholds): labelling overwrites nothing
    elif not overwrite:
        hint = ""
        flags = [f"--{k.replace('_', '-')} {old[k]}" for k in OLD_DEFAULTS if k in changed]
        if flags:
            hint = f" (to continue it as it was made, add {' '.join(flags)})"
        raise AvparseError(
            f"{path}: {root} was harvested with other settings ({', '.join(changed)}){hint}; "
            "use another --out, or --overwrite to redo it"
        )
    else:
        teachers = "models" if models else "labels"

    old_motion, new_motion = old.get("motion"), current.get("motion")
    if old_motion is not None and not isinstance(old_motion, dict):
        raise AvparseError(f"{path}: malformed harvest manifest ('motion' is not an object)")
    redo_motion = False
    if new_motion is None:
        record["motion"] = old_motion
    elif old_motion is not None and old_motion != new_motion:
        if not overwrite:
            keys = [k for k in new_motion if old_motion.get(k) != new_motion[k]]
            raise AvparseError(
                f"{path}: {root} has R(2+1)D-18 features made with other settings "
                f"({', '.join(keys)}); use another --out, or --overwrite to redo them"
            )
        redo_motion = True
    return Change(teachers, redo_motion, record)
