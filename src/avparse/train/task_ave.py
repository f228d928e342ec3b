"""The ``ave`` training task: AVE event localisation under weak (video-level) supervision.

Registered in :mod:`avparse.train.tasks` on import (``get_task("ave")`` imports this module).
A data root holds ``Annotations.txt`` and the split files at its top, and the usual per-id feature
and harvest folders (harvests are (10, 28)). Losses:

- ``han``: video-level labels only (the weak baseline);
- ``valor``: plus the teachers' segment harvests of the clip's class (VALOR carried over);
- ``valor-video``: harvests reduced to video level (ablation);
- ``uwav``: soft, class-balanced harvests with feature mixup (:mod:`avparse.train.uwav`; the
  paper's AVE variant ceils the mixup targets: ``--set uwav_ceil=true``);
- ``supervised``: the true segment labels as both audio and visual segment targets (the fully
  supervised AVE setting, for comparison).

Evaluation: the 29-way decision of :func:`avparse.eval.ave.decide_ave`, segment accuracy over
all segments (``accuracy``, the selection metric) and per-class accuracy (``acc/<class>``).

Features are packed by the one store builder (:func:`avparse.data.store.ensure_rows`, store
default ``ROOT/packed_ave``), keyed by the split's rows: rows whose video id repeats (see
:mod:`avparse.data.ave`) share the id's files; each row's harvest (hard and soft) is restricted
to its own class. The official AVE features (``audio_feature.h5``, ``visual_feature.h5``;
kinds ``ave_vggish``, ``ave_vgg19``) are read from their HDF5 files by the split's row order
(:mod:`avparse.data.ave_h5`; the pooled VGG-19 maps are cached in the store folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avparse.errors import AvparseError
from avparse.train.tasks import LoadRequest, SplitData, Task, check_harvests, register_task

_STORE_TARGETS = ("harvest_audio", "harvest_visual", "soft_audio", "soft_visual")


def _load(req: LoadRequest) -> SplitData:
    from avparse.data.ave import AVE_FILES, AVEAnnotations, read_ave_split
    from avparse.data.ave_h5 import CACHE_FOLDER, all_rows, is_h5_kind
    from avparse.data.store import AVE_STORE, default_store, ensure_rows
    from avparse.vocab import AVE

    if list(req.model.class_names) != AVE.names:
        raise AvparseError(
            f"the model has {req.model.num_classes} classes of vocabulary "
            f"{req.model.vocabulary!r}; the ave task needs the AVE vocabulary (28 classes; "
            "`avparse train --task ave` sets it)"
        )
    annotations = AVEAnnotations(req.root, AVE)
    clips = annotations.split(req.split)
    kinds = list(dict.fromkeys(req.model.feature_kinds.values()))
    h5 = [k for k in kinds if is_h5_kind(k)]  # the official AVE .h5 features, read as they are
    kinds = [k for k in kinds if k not in h5]
    harvests = [t for t in req.targets if t in _STORE_TARGETS]
    store = req.store if req.store is not None else default_store(req.root, AVE_STORE)
    stored = kinds + [req.kind(t) for t in harvests]
    packed = ensure_rows(
        req.root, store, req.split, clips.ids, stored,
        num_classes=len(clips.vocab), ids=clips.ids, progress=req.progress,
    )  # fmt: skip
    arrays = {k: packed[k] for k in stored}
    if h5:
        order = read_ave_split(req.root / AVE_FILES[req.split], len(annotations.clips))
        for kind in h5:
            every = all_rows(req.root, kind, Path(store) / CACHE_FOLDER, len(annotations.clips))
            arrays[kind] = np.ascontiguousarray(every[order])
    ids, union = clips.id_labels()  # a file holds the classes of every row of its id
    row_of = {c: i for i, c in enumerate(ids)}
    by_row = union[[row_of[c] for c in clips.ids]]
    check_harvests(req, {req.kind(t): arrays[req.kind(t)] for t in harvests}, by_row, clips.ids)
    weak = clips.labels.astype(np.float32)
    targets: dict[str, np.ndarray] = {"weak": weak}
    for kind in harvests:  # each row keeps only its own class (ids repeat across rows)
        targets[kind] = (np.asarray(arrays[req.kind(kind)]) * weak[:, None, :]).astype(np.float32)
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


def _write_predictions(
    out: Path, data: SplitData, frame_prob: np.ndarray, video_prob: np.ndarray
) -> list[str]:
    """``predictions.tsv``: the 29-way decision the score uses, one line per row and segment."""
    from avparse.eval.ave import AVE_PREDICTIONS, decide_ave, write_ave_predictions
    from avparse.vocab import AVE

    write_ave_predictions(
        out / AVE_PREDICTIONS, data.filenames, decide_ave(frame_prob, video_prob), AVE.names
    )
    return [AVE_PREDICTIONS]


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
        write_predictions=_write_predictions,
    )
)
