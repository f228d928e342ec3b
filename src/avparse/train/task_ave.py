"""The ``ave`` training task: AVE event localisation under weak (video-level) supervision.

Registered in :mod:`avparse.train.tasks` on import (``get_task("ave")`` imports this module).
A data root holds ``Annotations.txt`` and the split files at its top, and the usual per-id feature
and harvest folders (harvests are (10, 28)). Losses:

- ``han``: video-level labels only (the weak baseline);
- ``valor``: plus the teachers' segment harvests of the clip's class (VALOR carried over);
- ``valor-video``: harvests reduced to video level (ablation);
- ``supervised``: the true segment labels as both audio and visual segment targets (the fully
  supervised AVE setting, for comparison).

Evaluation: the 29-way decision of :func:`avparse.eval.ave.decide_ave`, segment accuracy over
all segments (``accuracy``, the selection metric) and per-class accuracy (``acc/<class>``).

Features are gathered once per split into memory-mapped arrays under ``<store>/<split>/`` (store
default ``ROOT/packed_ave``); an array is rebuilt when the split's ids or any source file's
size or mtime change. Rows whose video id repeats (see :mod:`avparse.data.ave`) share the id's
files; each row's harvest is restricted to its own class.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, SEGMENTS
from avparse.errors import AvparseError
from avparse.train.tasks import LoadRequest, SplitData, Task, register_task
from avparse.utils.atomic import atomic_path, write_json

DEFAULT_STORE = "packed_ave"
"""Store folder inside the data root when none is given."""


def _sources(kinds: list[str], num_classes: int) -> dict[str, tuple[str, tuple[int, int], str]]:
    out = {}
    for kind in kinds:
        if kind in FEATURE_KINDS:
            out[kind] = (FEATURE_KINDS[kind].folder, FEATURE_KINDS[kind].shape, "float32")
        else:
            modality = kind.removeprefix("harvest_")
            out[kind] = (HARVEST_FOLDERS[modality], (SEGMENTS, num_classes), "uint8")
    return out


def _stamp(root: Path, folder: str, ids: list[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for clip in dict.fromkeys(ids):
        path = root / folder / f"{clip}.npy"
        try:
            st = path.stat()
        except FileNotFoundError:
            raise AvparseError(f"{path}: missing (clip of this AVE split)") from None
        h.update(f"{clip}:{st.st_mtime_ns}:{st.st_size};".encode())
    return h.hexdigest()


def gather(
    root: Path,
    store: Path,
    split: str,
    ids: list[str],
    kinds: list[str],
    num_classes: int,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Memory-mapped (rows, ...) arrays of ``kinds`` for the rows ``ids``, built when stale."""
    out = {}
    for kind, (folder, shape, dtype) in _sources(kinds, num_classes).items():
        target = store / split / f"{kind}.npy"
        meta_path = target.with_suffix(".json")
        meta = {"ids": hashlib.blake2b("\n".join(ids).encode()).hexdigest(), "shape": shape,
                "files": _stamp(root, folder, ids)}  # fmt: skip
        meta = json.loads(json.dumps(meta))
        try:
            fresh = json.loads(meta_path.read_text()) == meta and target.is_file()
        except (OSError, json.JSONDecodeError):
            fresh = False
        if not fresh:
            rows = ids
            if progress:
                from tqdm import tqdm

                rows = tqdm(ids, desc=f"gather {split}/{kind}", unit="clip", leave=False)
            with atomic_path(target, suffix=".npy") as tmp:
                arr = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=dtype, shape=(len(ids), *shape)
                )
                for i, clip in enumerate(rows):
                    arr[i] = _read(root / folder / f"{clip}.npy", shape, dtype)
                arr.flush()
                del arr
            write_json(meta_path, meta)
        out[kind] = np.load(target, mmap_mode="r")
    return out


def _read(path: Path, shape: tuple[int, int], dtype: str) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise AvparseError(f"{path}: not a readable .npy file ({exc})") from None
    if tuple(data.shape) != tuple(shape):
        raise AvparseError(f"{path}: shape {tuple(data.shape)}, expected {tuple(shape)}")
    if dtype == "uint8":
        if not np.isin(data, (0, 1)).all():
            raise AvparseError(f"{path}: harvest values must be 0 or 1")
    elif not np.isfinite(data).all():
        raise AvparseError(f"{path}: non-finite values")
    return data


_STORE_TARGETS = ("harvest_audio", "harvest_visual")


def _load(req: LoadRequest) -> SplitData:
    from avparse.data.ave import AVEAnnotations
    from avparse.vocab import AVE

    if list(req.model.class_names) != AVE.names:
        raise AvparseError(
            f"the model has {req.model.num_classes} classes of vocabulary "
            f"{req.model.vocabulary!r}; the ave task needs the AVE vocabulary (28 classes; "
            "`avparse train --task ave` sets it)"
        )
    clips = AVEAnnotations(req.root, AVE).split(req.split)
    kinds = list(dict.fromkeys(req.model.feature_kinds.values()))
    harvests = [t for t in req.targets if t in _STORE_TARGETS]
    store = req.store if req.store is not None else req.root / DEFAULT_STORE
    arrays = gather(
        req.root, store, req.split, clips.ids, kinds + harvests, len(clips.vocab), req.progress
    )
    weak = clips.labels.astype(np.float32)
    targets: dict[str, np.ndarray] = {"weak": weak}
    for kind in harvests:  # each row keeps only its own class (ids repeat across rows)
        targets[kind] = (np.asarray(arrays[kind]) * weak[:, None, :]).astype(np.float32)
    if "segments_av" in req.targets:
        targets["segments_av"] = clips.segments[:, :, : len(clips.vocab)].astype(np.float32)
    targets["segment_labels"] = clips.segment_labels
    inputs = {role: arrays[kind] for role, kind in req.model.feature_kinds.items()}
    return SplitData(req.split, list(clips.ids), inputs, targets)


def _evaluate(frame_prob: np.ndarray, video_prob: np.ndarray, data: SplitData) -> dict[str, float]:
    from avparse.eval.ave import ave_scores, decide_ave
    from avparse.vocab import AVE

    pred = decide_ave(frame_prob, video_prob)
    return ave_scores(pred, data.targets["segment_labels"], AVE.names)


def _has_split(root: Path, split: str) -> bool:
    from avparse.data.ave import AVE_FILES

    return (root / AVE_FILES["annotations"]).is_file() and (root / AVE_FILES[split]).is_file()


TASK = register_task(
    Task(
        name="ave",
        vocabulary="ave",
        provides=("weak", *_STORE_TARGETS, "segments_av"),
        selection_metric="accuracy",
        score_keys=("accuracy",),
        load=_load,
        evaluate=_evaluate,
        has_split=_has_split,
    )
)
