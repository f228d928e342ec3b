"""The official AVE features (AVE-ECCV18) read as downloaded: one HDF5 file per modality.

The AVE authors release, beside ``Annotations.txt`` and the ``*_order.h5`` split files,
``audio_feature.h5`` (N, 10, 128) VGGish, ``visual_feature.h5`` (N, 10, 7, 7, 512) VGG-19
``pool5`` maps and ``labels.h5`` (N, 10, 29), each in the HDF5 dataset ``avadataset``, row ``i``
being line ``i`` of ``Annotations.txt`` (reference section 13). An AVE root made of those files
trains and evaluates as it is: the feature kinds ``ave_vggish`` and ``ave_vgg19``
(``avparse.data.layout``) name them, and the ``ave`` task reads a split's rows from them.

The student reads one vector per segment: VGGish rows as they are, the VGG-19 maps averaged over
their 7x7 grid (global average pooling, as the AVE literature does without region attention).
The pooled array of every clip, (N, 10, 512) float32 (85 MB for AVE's 4,143 clips, from a 4.2 GB
file), is computed once in chunks and cached in the store folder (``<store>/h5/``), keyed by the
file's size, mtime and inode; a changed file is pooled again. Needs ``h5py`` (``avparse[ave]``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avparse.data.ave import AVE_FILES, read_ave_annotations
from avparse.data.layout import AVE_H5_DATASET, AVE_H5_LABELS, FEATURE_KINDS, FeatureKind
from avparse.errors import AvparseError, require
from avparse.utils.atomic import atomic_path, write_json
from avparse.utils.text import count

CHUNK = 128
"""Clips read at once while pooling (bounds memory: 128 clips of maps are 128 MB)."""

CACHE_FOLDER = "h5"
"""Folder of the pooled arrays inside a store folder."""


def h5_kinds() -> dict[str, FeatureKind]:
    """The feature kinds stored as one HDF5 file of every clip (the official AVE features)."""
    return {k: fk for k, fk in FEATURE_KINDS.items() if fk.h5_shape is not None}


def is_h5_kind(kind: str) -> bool:
    return kind in FEATURE_KINDS and FEATURE_KINDS[kind].h5_shape is not None


def is_ave_h5_root(root: str | Path) -> bool:
    """An AVE root holding the official feature files (``Annotations.txt`` + an ``.h5`` feature)."""
    root = Path(root)
    return (root / AVE_FILES["annotations"]).is_file() and any(
        (root / fk.folder).is_file() for fk in h5_kinds().values()
    )


def _dataset_shape(path: Path, per_clip: tuple[int, ...], num_clips: int | None) -> tuple:
    """Open ``path`` and check its ``avadataset``; returns ``(h5 file, dataset)``; one-line errors."""
    h5py = require("h5py", "ave")
    if not path.is_file():
        raise AvparseError(f"{path}: file not found (an official AVE feature file)")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise AvparseError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        if AVE_H5_DATASET not in fh:
            have = ", ".join(sorted(fh.keys())) or "none"
            raise AvparseError(f"{path}: no HDF5 dataset {AVE_H5_DATASET!r} (has: {have})")
        ds = fh[AVE_H5_DATASET]
        if tuple(ds.shape[1:]) != tuple(per_clip):
            raise AvparseError(
                f"{path}: dataset {AVE_H5_DATASET!r} has shape {tuple(ds.shape)}, expected "
                f"(clips, {', '.join(map(str, per_clip))})"
            )
        if not (np.issubdtype(ds.dtype, np.floating) or np.issubdtype(ds.dtype, np.integer)):
            raise AvparseError(f"{path}: dataset {AVE_H5_DATASET!r} has dtype {ds.dtype}")
        if num_clips is not None and ds.shape[0] != num_clips:
            raise AvparseError(
                f"{path}: holds {count(ds.shape[0], 'clip')}, {AVE_FILES['annotations']} has {num_clips} "
                "(row i must be line i)"
            )
    except BaseException:
        fh.close()
        raise
    return fh, ds


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _finite(values: np.ndarray, path: Path, start: int) -> None:
    if not np.isfinite(values).all():
        bad = start + int(np.nonzero(~np.isfinite(values).reshape(len(values), -1).all(1))[0][0])
        raise AvparseError(f"{path}: row {bad} has non-finite values")


def _compute(path: Path, fk: FeatureKind, num_clips: int | None) -> np.ndarray:
    """Every clip's rows as the model reads them, (N, 10, dim) float32, read in chunks."""
    assert fk.h5_shape is not None
    fh, ds = _dataset_shape(path, fk.h5_shape, num_clips)
    with fh:
        n = ds.shape[0]
        out = np.empty((n, fk.frames, fk.dim), dtype=np.float32)
        spatial = tuple(range(2, len(fk.h5_shape)))  # block axes between time and dim: the grid
        for start in range(0, n, CHUNK):
            block = np.asarray(ds[start : start + CHUNK], dtype=np.float32)
            _finite(block, path, start)
            out[start : start + len(block)] = block.mean(axis=spatial) if spatial else block
    return out


def all_rows(
    root: str | Path, kind: str, cache: str | Path | None = None, num_clips: int | None = None
) -> np.ndarray:
    """Every clip's rows of ``kind`` (N, 10, dim) float32, pooled maps cached in ``cache``.

    Args:
        root: the AVE root holding the ``.h5`` file.
        kind: ``ave_vggish`` or ``ave_vgg19``.
        cache: a folder for the pooled array (the store's ``h5/``); None computes it in memory.
        num_clips: the rows ``Annotations.txt`` has (checked against the file).
    """
    if not is_h5_kind(kind):
        raise AvparseError(
            f"{kind!r} is not an official AVE feature kind ({', '.join(h5_kinds())})"
        )
    fk = FEATURE_KINDS[kind]
    path = Path(root) / fk.folder
    if not path.is_file():
        raise AvparseError(f"{path}: file not found (feature kind {kind!r}, official AVE features)")
    if cache is None or fk.h5_shape == fk.shape:  # nothing to pool: read as it is
        return _compute(path, fk, num_clips)
    cache = Path(cache)
    target, meta = cache / f"{kind}.npy", cache / f"{kind}.json"
    stamp = {"source": str(path.resolve()), "stamp": _stamp(path), "shape": list(fk.shape)}
    try:
        if json.loads(meta.read_text()) == stamp:
            arr = np.load(target, mmap_mode="r")
            if num_clips is None or len(arr) == num_clips:
                return arr
    except (OSError, ValueError):
        pass
    arr = _compute(path, fk, num_clips)
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".npy") as tmp:
        np.save(tmp, arr)
    write_json(meta, stamp)
    return arr


def split_rows(
    root: str | Path, kind: str, rows: np.ndarray, cache: str | Path | None = None
) -> np.ndarray:
    """The rows ``rows`` (annotation row indices, e.g. a split's order) of ``kind``, in order."""
    clips = read_ave_annotations(Path(root) / AVE_FILES["annotations"])
    arr = all_rows(root, kind, cache, num_clips=len(clips))
    return np.ascontiguousarray(arr[np.asarray(rows, dtype=np.int64)], dtype=np.float32)


def check_ave_h5(root: str | Path, *, quick: bool = False) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of the official AVE files of ``root``, one line each.

    Checks each feature file that is there (and ``labels.h5``): readable, dataset ``avadataset``,
    per-clip shape, one row per line of ``Annotations.txt``; without ``quick`` also finite
    values (read in chunks) and ``labels.h5`` agreeing with ``Annotations.txt``.
    """
    root = Path(root)
    problems: list[str] = []
    notes: list[str] = []
    try:
        clips = read_ave_annotations(root / AVE_FILES["annotations"])
    except AvparseError as exc:
        return [str(exc)], notes
    n = len(clips)
    files: dict[str, tuple[int, ...]] = {fk.folder: fk.h5_shape for fk in h5_kinds().values()}  # type: ignore[misc]
    files[AVE_H5_LABELS[0]] = AVE_H5_LABELS[1]
    for name, per_clip in files.items():
        path = root / name
        if not path.is_file():
            notes.append(f"{path}: absent")
            continue
        try:
            fh, ds = _dataset_shape(path, per_clip, n)
            with fh:
                if quick:
                    continue
                agree = 0
                for start in range(0, n, CHUNK):
                    block = np.asarray(ds[start : start + CHUNK])
                    _finite(block, path, start)
                    if name == AVE_H5_LABELS[0]:
                        truth = clips.segment_labels[start : start + len(block)]
                        agree += int((block.argmax(-1) == truth).all(axis=1).sum())
                if name == AVE_H5_LABELS[0] and agree != n:
                    problems.append(
                        f"{path}: {n - agree} of {n} clips' segment labels differ from "
                        f"{AVE_FILES['annotations']} (row i must be line i)"
                    )
        except AvparseError as exc:
            problems.append(str(exc))
    return problems, notes


def file_shapes(root: str | Path) -> dict[str, list[int] | None]:
    """The official AVE files of ``root`` and the shape of their dataset (None: absent/unreadable)."""
    h5py = require("h5py", "ave")
    out: dict[str, list[int] | None] = {}
    for name in [*(fk.folder for fk in h5_kinds().values()), AVE_H5_LABELS[0]]:
        out[name] = None
        try:
            with h5py.File(Path(root) / name, "r") as fh:
                ds = fh.get(AVE_H5_DATASET)
                out[name] = list(ds.shape) if ds is not None else None
        except OSError:
            pass
    return out


__all__ = [
    "all_rows",
    "check_ave_h5",
    "file_shapes",
    "h5_kinds",
    "is_ave_h5_root",
    "is_h5_kind",
    "split_rows",
]
