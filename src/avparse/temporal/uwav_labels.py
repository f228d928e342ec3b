"""UWAV's generated pseudo labels as avparse's temporal-teacher harvest (``avparse data import-uwav``).

UWAV's label generation (its ``scripts/pseudo_label_generation.sh``) writes, in the temporal
teacher's run folder under ``LLP_Dataset/`` (reference section 14):

* ``{a,v}_segmentwise_pseudo_labels/<id>.npy`` (10, 25): hard audio / visual labels,
* ``{a,v}_segmentwise_logits/<id>.npy`` (10, 25): the teacher's logits,
* ``{a,v}_classwise_threhsolds.npy`` (25,): per-class thresholds, ``-inf`` for a class absent
  from LLP val (the misspelling is UWAV's).

:func:`import_uwav_labels` checks them against a data root's splits and writes the harvest that
``avparse teacher label`` writes (``ROOT/temporal/``, :data:`avparse.data.layout.TEMPORAL_HARVEST`),
so the student trains on it exactly as on avparse's own temporal harvest:

* hard labels: UWAV's, as they are (uint8);
* logits: UWAV's, as scores (float32);
* soft labels ``sigmoid(logit - threshold)`` inside the clip's weak labels, 0 outside, from
  :func:`avparse.temporal.thresholds.soft_labels`; the student's ``--loss uwav`` divides the
  margin by 2, which is UWAV's ``sigmoid((z - theta) / 2)``. A ``-inf`` threshold becomes the
  smallest logit of that class minus 1, as UWAV's training code does, with the minimum taken
  over the whole split instead of one random batch (the deterministic variant; UWAV's targets
  for such a class vary from batch to batch);
* ``thresholds.json`` (``null`` for ``-inf``) and ``teacher_harvest.json`` naming the source,
  with the labels' LLP scores where a split has dense labels.

Splits the student learns from (train) must be complete; val and test are imported where UWAV
wrote them (its label generation covers every split).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from avparse.data.layout import (
    HARVEST_FOLDERS,
    SCORE_FOLDERS,
    SOFT_HARVEST_FOLDERS,
    TEMPORAL_HARVEST,
    TEMPORAL_MANIFEST,
    TEMPORAL_THRESHOLDS,
    UWAV_LABEL_DIR,
    UWAV_LABEL_FILES,
)
from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.temporal.data import load_split, root_kind
from avparse.temporal.label import MODALITIES, score_labels
from avparse.temporal.thresholds import soft_labels
from avparse.utils.atomic import save_npy, write_json
from avparse.utils.progress import progress as show_progress
from avparse.vocab import get_vocabulary

REQUIRED_SPLITS = ("train",)
"""Splits whose labels must all be there (the student learns from them)."""


def uwav_label_dir(path: str | Path) -> Path:
    """UWAV's ``LLP_Dataset`` folder: ``path`` itself or ``path/LLP_Dataset`` (a run folder)."""
    path = Path(path)
    if (path / UWAV_LABEL_DIR).is_dir() and not (
        path / UWAV_LABEL_FILES["audio"]["labels"]
    ).is_dir():
        path = path / UWAV_LABEL_DIR
    if not path.is_dir():
        raise AvparseError(f"{path}: folder not found (UWAV's LLP_Dataset folder of labels)")
    for m, files in UWAV_LABEL_FILES.items():
        for what, name in files.items():
            if not (path / name).exists():
                raise AvparseError(
                    f"{path / name}: missing ({m} {what} of UWAV's label generation; "
                    "give its LLP_Dataset folder or the run folder holding it)"
                )
    return path


def _thresholds(path: Path, num_classes: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise AvparseError(f"{path}: not a readable .npy file ({exc})") from None
    arr = np.asarray(arr, dtype=np.float64).reshape(-1) if arr.ndim <= 1 else arr
    if arr.shape != (num_classes,):
        raise AvparseError(f"{path}: shape {arr.shape}, expected ({num_classes},)")
    if np.isnan(arr).any() or (arr == math.inf).any():
        raise AvparseError(f"{path}: thresholds must be numbers or -inf (found NaN or +inf)")
    return arr


def _read(path: Path, shape: tuple[int, int], hard: bool) -> tuple[np.ndarray | None, str | None]:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as exc:
        return None, f"not a readable .npy file ({exc})"
    if arr.shape != shape:
        return None, f"shape {arr.shape}, expected {shape}"
    if hard:
        if not np.isin(arr, (0, 1)).all():
            return None, "hard labels must be 0 or 1"
        return arr.astype(np.uint8), None
    if not np.isfinite(arr).all():
        return None, "non-finite logits"
    return arr.astype(np.float32), None


def import_uwav_labels(
    source: str | Path, root: str | Path, *, overwrite: bool = False, progress: bool = False
) -> dict[str, Any]:
    """Write UWAV's labels in ``source`` as the temporal harvest of ``root``; returns the manifest.

    Every problem (missing or malformed file) of every split is checked before anything is
    written; the error names the first and counts the others.
    """
    root = Path(root)
    kind = root_kind(root)
    if kind != "llp":
        raise AvparseError(f"{root}: UWAV's generated labels are LLP's; this is a {kind} root")
    src = uwav_label_dir(source)
    out = root / TEMPORAL_HARVEST
    if (root / TEMPORAL_MANIFEST).is_file() and not overwrite:
        raise AvparseError(f"{out}: holds a teacher harvest; use --overwrite to replace it")
    vocab = get_vocabulary("llp")
    theta = {
        m: _thresholds(src / UWAV_LABEL_FILES[m]["thresholds"], len(vocab)) for m in MODALITIES
    }
    problems: list[str] = []
    splits: dict[str, dict[str, Any]] = {}
    for split in ("train", "val", "test"):
        try:
            data = load_split(root, split, vocab=vocab, segments=False)
        except AvparseError:
            continue  # the root has no such split
        arrays: dict[str, dict[str, list[np.ndarray]]] = {m: {"labels": [], "logits": []}
                                                           for m in MODALITIES}  # fmt: skip
        missing = 0
        shown = show_progress(
            list(zip(data.ids, data.lengths, strict=True)), desc=f"uwav {split}",
            total=len(data), unit="clip", enabled=progress,
        )  # fmt: skip
        for clip, length in shown:
            for m in MODALITIES:
                for what in ("labels", "logits"):
                    path = src / UWAV_LABEL_FILES[m][what] / f"{clip}.npy"
                    arr, problem = _read(path, (int(length), len(vocab)), what == "labels")
                    if problem == "missing" and split not in REQUIRED_SPLITS:
                        missing += 1
                        continue
                    if problem is not None:
                        problems.append(f"{path}: {problem} (clip of split {split!r})")
                    elif arr is not None:
                        arrays[m][what].append(arr)
        if missing:
            if missing != 4 * len(data):
                problems.append(
                    f"{src}: split {split!r} is partly there ({missing} of {4 * len(data)} files "
                    "missing); UWAV's label generation writes every clip of a split"
                )
            continue  # a split UWAV did not label
        splits[split] = {"data": data, "arrays": arrays}
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise AvparseError(problems[0] + more)
    if "train" not in splits:
        raise AvparseError(f"{root}: no train split to import labels for")
    if out.exists():
        shutil.rmtree(out)
    scores: dict[str, dict[str, float]] = {}
    for split, entry in splits.items():
        data = entry["data"]
        hard: dict[str, Ragged] = {}
        for m in MODALITIES:
            z = Ragged.from_arrays(entry["arrays"][m]["logits"])
            h = Ragged.from_arrays(entry["arrays"][m]["labels"])
            rows = np.repeat(np.arange(len(data)), data.lengths)
            soft = soft_labels(z.values, theta[m], data.weak[rows])
            hard[m] = Ragged(h.values.astype(bool), h.offsets)
            for i, clip in enumerate(data.ids):
                a, b = z.offsets[i], z.offsets[i + 1]
                save_npy(root / TEMPORAL_HARVEST / SCORE_FOLDERS[m] / f"{clip}.npy", z.values[a:b])
                save_npy(
                    root / TEMPORAL_HARVEST / SOFT_HARVEST_FOLDERS[m] / f"{clip}.npy", soft[a:b]
                )
                save_npy(
                    root / TEMPORAL_HARVEST / HARVEST_FOLDERS[m] / f"{clip}.npy", h.values[a:b]
                )
        if data.dense_audio is not None and data.dense_visual is not None:
            scores[split] = score_labels(hard["audio"], hard["visual"], data.dense_audio,
                                         data.dense_visual)  # fmt: skip
    source_text = f"UWAV's label generation: {src.resolve()}"
    write_json(
        root / TEMPORAL_THRESHOLDS,
        {
            "classes": list(vocab.names),
            **{m: [None if not math.isfinite(t) else float(t) for t in theta[m]] for m in MODALITIES},
            "source": source_text,
        },
    )  # fmt: skip
    manifest = {
        "teacher": source_text,
        "preset": None,
        "teacher_config": None,
        "vocabulary": vocab.name,
        "splits": {s: len(e["data"]) for s, e in splits.items()},
        "thresholds": f"UWAV's {', '.join(UWAV_LABEL_FILES[m]['thresholds'] for m in MODALITIES)}",
        "soft_labels": "sigmoid(logit - threshold) in the weak labels; a -inf threshold is the "
        "split's smallest logit of the class minus 1",
        "label_scores": scores,
    }
    write_json(root / TEMPORAL_MANIFEST, manifest)
    return manifest
