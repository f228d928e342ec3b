"""``avparse data check`` of a UnAV-100 root: the annotation file, then every feature folder.

A UnAV-100 root (``docs/unav.md``) holds ``unav100_annotations.json`` and per video the
published VGGish / I3D files and the CLIP / CLAP segment features, in UWAV's folder names; a
harvest (``avparse harvest``) adds the per-class folders of an LLP root, with ``T`` rows per
video. Every annotation problem is reported (one line each, naming the video and the field),
then, for every folder that exists, per split the videos without a file, files of no video, and
files that fail the per-file rule (:func:`avparse.data.files.read_feature_file`, given the
video's ``T`` and duration). The report is a :class:`avparse.data.check.CheckReport`, printed by
the same :func:`avparse.data.check.format_report`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avparse.data.check import (
    HARVEST_SPLITS,
    CheckReport,
    FileJob,
    FolderReport,
    harvest_agreement,
    npy_files,
    queue_split,
    read_files,
)
from avparse.data.files import read_feature_file
from avparse.data.layout import (
    FEATURE_KINDS,
    HARVEST_KINDS,
    PER_CLASS_KINDS,
    UNAV_ANNOTATIONS,
    kind_folder,
    task_kinds,
)
from avparse.data.unav import SUBSETS, UnAVAnnotations
from avparse.errors import AvparseError
from avparse.utils.text import count
from avparse.vocab import UNAV, Vocabulary


def check_unav_root(
    root: str | Path,
    *,
    quick: bool = False,
    vocab: Vocabulary = UNAV,
    workers: int = 4,
    progress: bool = False,
    accept_mismatch: bool = False,
) -> CheckReport:
    """Check a UnAV-100 data root (see the module docstring); arguments as ``check_root``'s."""
    root = Path(root)
    if not root.is_dir():
        raise AvparseError(f"{root}: data root not found")
    report = CheckReport(root=root, quick=quick, task="unav", accept_mismatch=accept_mismatch)
    ann = UnAVAnnotations(root, vocab=vocab, strict=False)
    report.annotation_problems.extend(ann.problems)
    if not ann.problems:
        report.annotations[UNAV_ANNOTATIONS] = None
    elif len(ann.problems) == 1 and not len(ann):
        report.annotations[UNAV_ANNOTATIONS] = ann.problems[0].split(": ", 1)[-1]
    else:
        report.annotations[UNAV_ANNOTATIONS] = (
            f"{count(len(ann.problems), 'problem')} (listed below)"
        )
    videos = {s: ann.videos(s) for s in SUBSETS}
    lengths = {s: ann.lengths(s) for s in SUBSETS}
    durations = {s: ann.durations(s) for s in SUBSETS}
    all_ids = {v for ids in videos.values() for v in ids}
    clip_of = {  # id -> (T, duration) over the splits
        v: (int(t), float(d))
        for s in SUBSETS
        for v, t, d in zip(videos[s], lengths[s], durations[s], strict=True)
    }
    jobs: list[FileJob] = []
    present_features = 0
    for kind in [*task_kinds("unav"), *PER_CLASS_KINDS]:
        folder = kind_folder(kind)
        fk = FEATURE_KINDS.get(kind)
        suffix = fk.suffix if fk is not None else ""
        path = root / folder
        entry = FolderReport(kind, folder, path.is_dir(), suffix=suffix)
        report.folders.append(entry)
        if not entry.exists:
            continue
        present_features += fk is not None
        files = npy_files(path, suffix)
        entry.extra = sorted(files[c] for c in files if c not in all_ids)
        for split, ids in videos.items():
            if not ids:
                continue
            required = kind not in PER_CLASS_KINDS or split in HARVEST_SPLITS
            queue_split(jobs, entry, path, split, ids, files, required=required)
    if not present_features:
        report.notes.append(
            "no feature folder (the published VGGish / I3D files or the CLIP / CLAP segment "
            "features, docs/unav.md): nothing to train on yet"
        )
    harvests: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def read(job: FileJob) -> str | None:
        sf, kind, path, _, vid = job
        t, duration = clip_of[vid]
        values, problem = read_feature_file(
            path, kind, num_classes=len(vocab), quick=quick, length=t, duration=duration
        )
        if values is not None and kind in HARVEST_KINDS:
            harvests.setdefault((kind, sf.split), {})[vid] = values
        return problem

    read_files(jobs, read, workers=workers, progress=progress)
    if not quick:
        report.agreement = harvest_agreement(
            {s: (ann.videos(s), ann.weak(s)) for s in SUBSETS}, harvests
        )
    return report
