"""The ``unav`` training task: audio-visual video parsing on UnAV-100, videos of any length.

Registered in :mod:`avparse.train.tasks` on import (``get_task("unav")`` imports this module).
A data root holds ``unav100_annotations.json`` (:class:`avparse.data.unav.UnAVAnnotations`: the
splits ``train``, ``val`` = the file's ``validation``, ``test``) and per-video feature folders
(:mod:`avparse.data.layout`: UnAV-100's published VGGish / I3D kinds, or the segment embeddings
``clip_segments`` / ``clap_segments``), and optionally the harvest folders of
``avparse harvest`` ((T, 100) per video). A video of ``duration`` seconds has
``T = ceil(duration)`` one-second segments.

- **Data**: the store packs each split ragged (:func:`avparse.data.store.ensure_rows` with the
  videos' lengths; default ``ROOT/packed_unav``), batches are padded per batch with a mask and
  drawn from length buckets (:mod:`avparse.train.batching`).
- **Losses**: ``han`` (video-level labels, the default of the ``unav`` preset), ``valor``,
  ``valor-video`` and ``uwav`` where the root holds harvests (``--harvest temporal``: the
  temporal teacher's labels in ``ROOT/temporal``, as for LLP).
- **Scores**: UnAV-100's events are audio-visual, so the scores are the LLP metric's
  audio-visual ones (reference section 7): ``seg_av`` (segment level, the selection metric, as
  UWAV selects its teacher's epoch) and ``evt_av`` (event level, IoU >= 0.5), from the decision
  rule of :func:`avparse.eval.events.decide` (audio & visual), predictions and truth padded
  with False to the longest video (padding counts nothing).
- **Predictions** (``avparse evaluate --task unav``): ``audio.tsv``, ``visual.tsv`` and
  ``audio_visual.tsv`` with onsets and offsets in seconds (:mod:`avparse.data.unav_events`),
  ``probs.npz`` (padded probabilities and ``lengths``) and ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avparse.errors import AvparseError
from avparse.train.tasks import LoadRequest, SplitData, Task, check_harvests, register_task

_STORE_TARGETS = ("harvest_audio", "harvest_visual", "soft_audio", "soft_visual")
SCORE_KEYS = ("seg_av", "evt_av")
"""Scores of the task: the LLP segment- and event-level F of audio-visual events (percent)."""


def _load(req: LoadRequest) -> SplitData:
    from avparse.data.store import UNAV_STORE, default_store, ensure_rows
    from avparse.data.unav import UnAVAnnotations
    from avparse.vocab import UNAV

    if list(req.model.class_names) != UNAV.names:
        raise AvparseError(
            f"the model has {req.model.num_classes} classes of vocabulary "
            f"{req.model.vocabulary!r}; the unav task needs the UnAV-100 vocabulary (100 "
            "classes; `avparse train --task unav` sets it)"
        )
    ann = UnAVAnnotations(req.root)
    videos = ann.videos(req.split)
    if not videos:
        raise AvparseError(f"{ann.path}: split {req.split!r} has no videos")
    lengths = ann.lengths(req.split)
    kinds = list(dict.fromkeys(req.model.feature_kinds.values()))
    harvests = [t for t in req.targets if t in _STORE_TARGETS]
    store = req.store if req.store is not None else default_store(req.root, UNAV_STORE)
    packed = ensure_rows(
        req.root, store, req.split, videos, kinds + [req.kind(t) for t in harvests],
        num_classes=len(UNAV), ids=videos, progress=req.progress, lengths=lengths,
    )  # fmt: skip
    weak = ann.weak(req.split)
    hard = [req.kind(t) for t in harvests if t.startswith("harvest_")]
    check_harvests(req, {k: packed.ragged(k).pad()[0] for k in hard}, weak, videos)
    targets: dict[str, object] = {t: packed.ragged(req.kind(t)) for t in harvests}
    targets["weak"] = weak.astype(np.float32)
    if req.split != "train":
        targets["dense"] = ann.dense(req.split)
        targets["durations"] = ann.durations(req.split)
    inputs = {role: packed.ragged(kind) for role, kind in req.model.feature_kinds.items()}
    return SplitData(req.split, videos, inputs, targets, np.asarray(lengths, dtype=np.int64))


def decide_av(
    frame_prob: np.ndarray, video_prob: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(audio, visual, audio & visual)`` events (N, T, C) bool of padded predictions."""
    from avparse.eval.events import decide

    audio, visual = decide(frame_prob, video_prob, lengths=lengths)
    return audio, visual, audio & visual


def scores(pred_av: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """The LLP segment- and event-level F (percent) of audio-visual events, (N, T, C) bool
    arrays padded with False (padding adds no TP, FP, FN or run, so it changes nothing)."""
    from avparse.eval.metrics import event_counts, segment_counts

    seg = segment_counts(pred_av, true)
    evt, _ = event_counts(pred_av, true, seg)
    return {
        "seg_av": float(100 * seg.clip_scores().mean()),
        "evt_av": float(100 * evt.clip_scores().mean()),
    }


def _evaluate(frame_prob: np.ndarray, video_prob: np.ndarray, data: SplitData) -> dict[str, float]:
    if data.lengths is None:
        raise AvparseError(f"split {data.split!r} has no clip lengths (not a unav split)")
    _, _, pred_av = decide_av(frame_prob, video_prob, data.lengths)
    true, _ = data.targets["dense"].pad(length=frame_prob.shape[1])
    return scores(pred_av, true)


def write_predictions(
    out: Path, data: SplitData, frame_prob: np.ndarray, video_prob: np.ndarray
) -> list[str]:
    """Events TSV per modality with times in seconds (atomically); the file names.

    ``avparse evaluate`` adds ``probs.npz`` (padded probabilities and ``lengths``)."""
    from avparse.data.unav_events import write_events_tsv
    from avparse.vocab import UNAV

    assert data.lengths is not None
    durations = data.targets.get("durations")
    if durations is None:  # a train split: whole segments
        durations = data.lengths.astype(np.float64)
    audio, visual, av = decide_av(frame_prob, video_prob, data.lengths)
    names = []
    for name, matrix in (("audio", audio), ("visual", visual), ("audio_visual", av)):
        write_events_tsv(out / f"{name}.tsv", data.filenames, durations, matrix, UNAV)
        names.append(f"{name}.tsv")
    return names


def _has_split(root: Path, split: str) -> bool:
    """Whether the annotation file has videos in ``split`` (a root without test videos trains
    without the final test pass)."""
    from avparse.data.layout import UNAV_ANNOTATIONS
    from avparse.data.unav import UnAVAnnotations

    if not (root / UNAV_ANNOTATIONS).is_file():
        return False
    try:
        return bool(UnAVAnnotations(root, strict=False).videos(split))
    except AvparseError:
        return False


TASK = register_task(
    Task(
        name="unav",
        vocabulary="unav",
        provides=("weak", *_STORE_TARGETS),
        selection_metric="seg_av",
        score_keys=SCORE_KEYS,
        load=_load,
        evaluate=_evaluate,
        has_split=_has_split,
        write_predictions=write_predictions,
    )
)
