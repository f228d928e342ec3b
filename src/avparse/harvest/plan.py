"""Planning a harvest: label rows and video files in, one work item per clip out.

Pure steps, no model and no write: :func:`plan` pairs the label rows with video files (sorted by
clip id; repeated ids and rows without a video are recorded), :func:`shard` gives a torchrun
rank its clips, and :func:`assign` decides from the files already in the root what each clip
still needs (teachers, R(2+1)D-18 features, labels from saved logits, or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avparse.data.llp import clip_id, read_weak
from avparse.errors import AvparseError
from avparse.harvest.outputs import ClipOutputs
from avparse.vocab import Vocabulary

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".m4a", ".ogg")
"""Audio-only files: harvested as heard and not seen (visual labels 0, ``CLIP/no_video``)."""
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS

Failure = tuple[str, str, str]
"""``(clip, file, reason)`` of a clip that could not be harvested."""


@dataclass
class ClipJob:
    """One clip of the harvest and what it still needs."""

    clip: str
    filename: str
    weak: np.ndarray
    video: Path | None = None
    teachers: bool = True
    """Run the teachers (False: their files exist and only R(2+1)D features are missing)."""
    motion: bool = False
    """Compute R(2+1)D-18 features."""
    segments: int | None = None
    """One-second segments of the whole video as its labels give them (UnAV-100:
    ``ceil(duration)``); None: from the file's duration (whole-video harvests only)."""


@dataclass
class Work:
    """What a run has to do with its clips (see :func:`assign`)."""

    todo: list[ClipJob] = field(default_factory=list)
    """Clips that need a model pass (teachers, R(2+1)D-18 or both)."""
    relabel: list[ClipJob] = field(default_factory=list)
    """Clips labelled from their saved logits, without a model pass."""
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)


def read_labels(
    path: Path, task: str, vocab: Vocabulary
) -> tuple[list[str], list[str], np.ndarray]:
    """(filenames, clip ids, weak (N, C) bool) of :func:`read_clips`."""
    filenames, ids, weak, _ = read_clips(path, task, vocab)
    return filenames, ids, weak


def read_clips(
    path: Path, task: str, vocab: Vocabulary
) -> tuple[list[str], list[str], np.ndarray, list[int] | None]:
    """(filenames, clip ids, weak (N, C) bool, segments per clip or None) from an LLP weak CSV,
    an AVE ``Annotations.txt`` or the UnAV-100 annotation file (every split; its durations give
    each video's segments)."""
    if task == "ave":
        from avparse.data.ave import read_ave_annotations

        ids, labels = read_ave_annotations(path, vocab).id_labels()
        return list(ids), list(ids), np.asarray(labels, bool), None
    if task == "unav":
        from avparse.data.unav import UnAVAnnotations

        ann = UnAVAnnotations(path, vocab=vocab)
        names: list[str] = []
        rows, lengths = [], []
        for split in ("train", "val", "test"):
            names += list(ann.videos(split))
            rows.append(np.asarray(ann.weak(split), bool))
            lengths += [int(n) for n in ann.lengths(split)]
        return names, list(names), np.concatenate(rows), lengths
    weak = read_weak(path, vocab)
    return list(weak.filenames), weak.ids, np.asarray(weak.labels, bool), None


def index_videos(folder: Path) -> dict[str, Path]:
    """Video and audio files under ``folder`` (recursively) by file stem.

    Two files with one stem (``abc.mp4`` and ``abc.mkv``, or ``abc.wav`` in another folder)
    are refused with one line naming both: which one is the clip's is the user's choice.
    """
    if not folder.is_dir():
        raise AvparseError(f"{folder}: video folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in MEDIA_EXTENSIONS and path.is_file():
            if path.stem in found:
                raise AvparseError(
                    f"{found[path.stem]} and {path}: two files for clip {path.stem!r} under "
                    "--videos; keep one there"
                )
            found[path.stem] = path
    return found


def find_video(videos: dict[str, Path], filename: str) -> Path | None:
    """A clip's video by its full filename (with or without extension) or its 11-character id."""
    stem = Path(filename).stem if Path(filename).suffix.lower() in MEDIA_EXTENSIONS else filename
    return videos.get(filename) or videos.get(stem) or videos.get(clip_id(filename))


def plan(
    filenames: list[str],
    ids: list[str],
    weak: np.ndarray,
    videos: dict[str, Path],
    lengths: list[int] | None = None,
) -> tuple[list[ClipJob], list[Failure]]:
    """Jobs sorted by clip id, and failures for clips with a repeated id.

    ``lengths``: each clip's segments where the labels give them (UnAV-100), else None.
    """
    jobs: dict[str, ClipJob] = {}
    failures = []
    for i, (name, cid, row) in enumerate(zip(filenames, ids, weak, strict=True)):
        if cid in jobs:
            failures.append((cid, name, f"clip id repeats {jobs[cid].filename!r}; harvested once"))
            continue
        length = None if lengths is None else int(lengths[i])
        jobs[cid] = ClipJob(cid, name, row, find_video(videos, name), segments=length)
    ordered = [jobs[c] for c in sorted(jobs)]
    return ordered, failures


def shard(items: list, rank: int, world: int) -> list:
    """The items of ``rank``: sorted positions ``i % world == rank`` (no clip done twice)."""
    return [j for i, j in enumerate(items) if i % world == rank]


def assign(
    jobs: list[ClipJob],
    root: Path,
    *,
    redo_models: bool,
    motion: bool,
    labelled: bool,
    replaced: str = "same",
    redo_motion: bool = False,
    span: str = "window",
) -> Work:
    """Decide what each clip needs from the files already in ``root``.

    Args:
        redo_models: run the models even on finished clips (``--overwrite`` with the same
            settings).
        motion: R(2+1)D-18 features are asked for.
        labelled: thresholds are known, so labels are written.
        replaced: what new settings replace (``"same"``, ``"labels"``, ``"models"``: see
            :class:`avparse.harvest.manifest.Change`); those files count as missing.
        redo_motion: the R(2+1)D-18 features count as missing.
        span: ``window`` (first 10 s) or ``full`` (whole video; its files are the segment
            embeddings, see :mod:`avparse.harvest.outputs`).
    """
    work = Work()
    for job in jobs:
        out = ClipOutputs(root, job.clip)
        if job.video is None:
            work.failures.append((job.clip, job.filename, "video not found"))
            continue
        model_done = replaced != "models" and out.model_done(span)
        labels_done = replaced == "same" and out.labels_done()
        motion_done = not redo_motion and out.motion.is_file()
        job.teachers = redo_models or not model_done
        job.motion = motion and (redo_models or not motion_done)
        if job.teachers or job.motion:
            work.todo.append(job)
        if not job.teachers and labelled and not labels_done:
            work.relabel.append(job)
        elif not (job.teachers or job.motion):
            work.skipped += 1
    return work
