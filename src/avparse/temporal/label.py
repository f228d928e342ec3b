"""``avparse teacher label``: the temporal teacher's harvest of a data root, and its report.

For every split of the root, the teacher's audio and visual logits against the root's
vocabulary (text embeddings from :mod:`avparse.temporal.text`), per-class thresholds
(:mod:`avparse.temporal.thresholds`: chosen on the validation split's dense labels, or given),
label filtering by the weak labels, and per clip, in ``ROOT/temporal/`` laid out like a
harvest (:data:`avparse.data.layout.TEMPORAL_HARVEST`):

* ``CLAP|CLIP/segment_pseudo_labels/<id>.npy`` (T, C) uint8: ``logit > threshold`` and weak
* ``CLAP|CLIP/segment_soft_labels/<id>.npy`` (T, C) float32: ``sigmoid(logit - threshold)``
  inside the weak labels, 0 outside (the student's ``--loss uwav`` divides the margin by 2)
* ``CLAP|CLIP/segment_scores/<id>.npy`` (T, C) float32: the raw logits
* ``thresholds.json``: the (C,) thresholds per modality (``null`` = -inf) and their source
* ``teacher_harvest.json``: teacher, vocabulary, splits, and the labels' scores where the root
  has dense labels (segment and event level)
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
)
from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.eval.metrics import llp_scores
from avparse.temporal.data import TeacherSplit, load_split, root_kind
from avparse.temporal.thresholds import (
    classwise_thresholds,
    masked_logits,
    pooled_threshold,
    soft_labels,
)
from avparse.utils.atomic import save_npy, write_json
from avparse.utils.jsonio import read_json_object
from avparse.vocab import Vocabulary, get_vocabulary

MODALITIES = ("audio", "visual")
THRESHOLD_MODES = ("val", "val-pooled")
"""``--thresholds`` words: per class on val (section 12), one class-agnostic threshold on val.
A number (one logit threshold for all classes) or a thresholds file are accepted too."""


def _splits(root: Path) -> list[str]:
    from avparse.data.ave import AVE_FILES
    from avparse.data.layout import LLP_FILES

    kind = root_kind(root)
    if kind == "llp":
        return [s for s in ("train", "val", "test") if (root / LLP_FILES[s]).is_file()]
    if kind == "ave":
        return [s for s in ("train", "val", "test") if (root / AVE_FILES[s]).is_file()]
    return ["train", "val", "test"]


def score_labels(
    pred_a: Ragged, pred_v: Ragged, true_a: Ragged, true_v: Ragged
) -> dict[str, float]:
    """The LLP metric of per-clip labels of any length (padded with False, which is neutral)."""
    args = [r.pad(fill=False, dtype=bool)[0] for r in (pred_a, pred_v, true_a, true_v)]
    return {k: float(v) for k, v in llp_scores(*args).items()}


def _thresholds_from_file(path: Path, vocab: Vocabulary) -> dict[str, np.ndarray]:
    data = read_json_object(path, "thresholds file")
    out = {}
    for m in MODALITIES:
        values = data.get(m)
        if not isinstance(values, list) or len(values) != len(vocab):
            raise AvparseError(f"{path}: {m!r} must be a list of {len(vocab)} thresholds")
        try:
            out[m] = np.array([-math.inf if v is None else float(v) for v in values])
        except (TypeError, ValueError):
            raise AvparseError(f"{path}: {m!r} must hold numbers or null (-inf)") from None
    names = data.get("classes")
    if names is not None and list(names) != list(vocab.names):
        raise AvparseError(f"{path}: thresholds are for other classes than {vocab.name!r}")
    return out


def choose_thresholds(
    how: str,
    val: TeacherSplit | None,
    logits: dict[str, Ragged] | None,
    vocab: Vocabulary,
    root: Path,
) -> tuple[dict[str, np.ndarray], str]:
    """``({"audio": (C,), "visual": (C,)}, description)`` for ``--thresholds how``."""
    if how in THRESHOLD_MODES:
        if val is None or logits is None or val.dense_audio is None or val.dense_visual is None:
            raise AvparseError(
                f"{root}: --thresholds {how} needs dense labels of the val split, which this "
                "root has not; give --thresholds FILE (e.g. another root's temporal/"
                "thresholds.json) or --thresholds NUMBER (one logit threshold for all classes)"
            )
        out = {}
        for m, dense in (("audio", val.dense_audio), ("visual", val.dense_visual)):
            z = masked_logits(logits[m].values, val.weak, val.lengths)
            pick = classwise_thresholds if how == "val" else pooled_threshold
            out[m] = pick(z, dense.values)
        what = "per class" if how == "val" else "one for all classes (pooled)"
        return out, f"chosen on {root.name} val dense labels, {what}"
    try:
        value = float(how)
    except ValueError:
        path = Path(how)
        if not path.is_file():
            raise AvparseError(
                f"--thresholds {how}: expected val, val-pooled, a number or a thresholds file"
            ) from None
        return _thresholds_from_file(path, vocab), f"given: {path}"
    if not math.isfinite(value):
        raise AvparseError(f"--thresholds {how}: a finite number is needed")
    return {m: np.full(len(vocab), value) for m in MODALITIES}, f"given: {value} for all classes"


def _folder(root: Path, folders: dict[str, str], m: str) -> Path:
    return root / TEMPORAL_HARVEST / folders[m]


def label_root(
    teacher: str | Path,
    root: str | Path,
    *,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    thresholds: str = "val",
    device: str = "cpu",
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool = False,
    precision: str = "float32",
) -> dict[str, Any]:
    """Label every split of ``root`` with the temporal teacher; returns the manifest.

    ``precision`` ``bfloat16``: the teacher's forward passes under bfloat16 autocast."""
    import torch

    from avparse.temporal.checkpoint import load_teacher
    from avparse.temporal.infer import split_logits
    from avparse.temporal.text import check_dims, event_features
    from avparse.utils.precision import check_precision

    check_precision(precision)
    root = Path(root)
    kind = root_kind(root)
    out = root / TEMPORAL_HARVEST
    if (root / TEMPORAL_MANIFEST).is_file() and not overwrite:
        raise AvparseError(f"{out}: holds a teacher harvest; use --overwrite to replace it")
    model, cfg = load_teacher(teacher, preset, overrides)
    model = model.to(device).eval()
    vocab = get_vocabulary(kind)
    text = event_features(
        root, {"audio": cfg.clap_text, "visual": cfg.clip_text}, vocab, device=device
    )
    check_dims(text, cfg.audio_text_dim, cfg.visual_text_dim, str(teacher))
    dims = {"audio": cfg.audio_dim, "visual": cfg.visual_dim}
    data: dict[str, TeacherSplit] = {}
    logits: dict[str, dict[str, Ragged]] = {}
    for split in _splits(root):
        data[split] = load_split(root, split, dims=dims, vocab=vocab, progress=progress)
        za, zv = split_logits(
            model, data[split].audio, data[split].visual, text,
            batch_size=batch_size, device=device, progress=progress, desc=f"teacher {split}",
            precision=precision,
        )  # fmt: skip
        logits[split] = {"audio": za, "visual": zv}
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    theta, source = choose_thresholds(thresholds, data.get("val"), logits.get("val"), vocab, root)
    if overwrite and out.exists():
        shutil.rmtree(out)
    scores: dict[str, dict[str, float]] = {}
    for split, d in data.items():
        rows = np.repeat(np.arange(len(d)), d.lengths)
        weak_rows = d.weak[rows]
        hard: dict[str, Ragged] = {}
        for m in MODALITIES:
            z = logits[split][m]
            h = (z.values > theta[m]) & weak_rows
            s = soft_labels(z.values, theta[m], weak_rows)
            hard[m] = Ragged(h, z.offsets)
            for i, clip in enumerate(d.ids):
                a, b = z.offsets[i], z.offsets[i + 1]
                save_npy(_folder(root, SCORE_FOLDERS, m) / f"{clip}.npy", z.values[a:b])
                save_npy(_folder(root, SOFT_HARVEST_FOLDERS, m) / f"{clip}.npy", s[a:b])
                save_npy(_folder(root, HARVEST_FOLDERS, m) / f"{clip}.npy", h[a:b].astype(np.uint8))
        if d.dense_audio is not None and d.dense_visual is not None:
            scores[split] = score_labels(
                hard["audio"], hard["visual"], d.dense_audio, d.dense_visual
            )
    write_json(
        root / TEMPORAL_THRESHOLDS,
        {
            "classes": list(vocab.names),
            **{
                m: [None if not math.isfinite(t) else float(t) for t in theta[m]]
                for m in MODALITIES
            },
            "source": source,
        },
    )
    manifest = {
        "teacher": str(Path(teacher).resolve()) if Path(teacher).exists() else str(teacher),
        "preset": preset,
        "teacher_config": cfg.to_dict(),
        "vocabulary": vocab.name,
        "splits": {s: len(d) for s, d in data.items()},
        "thresholds": source,
        "precision": precision,
        "label_scores": scores,
    }
    write_json(root / TEMPORAL_MANIFEST, manifest)
    return manifest


def harvest_folders(source: str) -> dict[str, Path]:
    """Hard-label folders (relative to a root) of a harvest source: ``frame`` or ``temporal``."""
    from avparse.data.layout import harvest_kind, kind_folder

    return {m: Path(kind_folder(harvest_kind(f"harvest_{m}", source))) for m in MODALITIES}


def report(root: str | Path, split: str = "test", sources: tuple[str, ...] = ("frame", "temporal")
           ) -> dict[str, dict[str, float]]:  # fmt: skip
    """Scores of each harvest's hard labels against the split's dense labels (the labels as
    predictions: the paper's 66.0 (VALOR) vs 72.8 (UWAV) segment Type@AV on LLP test).

    A harvest that is absent is skipped; none present is one line.
    """
    root = Path(root)
    kind = root_kind(root)
    vocab = get_vocabulary(kind)
    d = load_split(root, split, vocab=vocab, segments=False)
    if d.dense_audio is None or d.dense_visual is None:
        raise AvparseError(f"{root}: split {split!r} has no dense labels to score against")
    out: dict[str, dict[str, float]] = {}
    for source in sources:
        folders = harvest_folders(source)
        if not all((root / f).is_dir() for f in folders.values()):
            continue
        hard = {}
        for m, folder in folders.items():
            arrays = []
            for clip, t in zip(d.ids, d.dense_audio.lengths, strict=True):
                path = root / folder / f"{clip}.npy"
                try:
                    arr = np.load(path)
                except (OSError, ValueError):
                    raise AvparseError(f"{path}: missing or unreadable harvest file") from None
                if arr.shape != (t, len(vocab)):
                    raise AvparseError(f"{path}: shape {arr.shape}, expected ({t}, {len(vocab)})")
                arrays.append(arr.astype(bool))
            hard[m] = Ragged.from_arrays(arrays, tail=(len(vocab),), dtype=bool)
        out[source] = score_labels(hard["audio"], hard["visual"], d.dense_audio, d.dense_visual)
    if not out:
        raise AvparseError(
            f"{root}: no harvest to score (run `avparse harvest` or `avparse teacher label`)"
        )
    return out
