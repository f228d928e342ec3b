"""``avparse data check``: is a data root complete and sound, in the published layout?

The task of the root (LLP, AVE or UnAV-100: :mod:`avparse.data.unav_check`) is recognised from its annotation files
(:func:`avparse.data.roots.root_task`) or given. Checks the annotation files (LLP: present,
valid, splits disjoint; AVE: ``Annotations.txt`` and the three split files), then every feature and
harvest folder that exists (and the teacher logits and soft labels ``avparse harvest`` writes
beside the harvests): per split which clips have no ``.npy`` file, which files belong to
no clip of any split, and which files have a wrong shape or dtype, non-finite values, or
harvest values other than 0/1. Each file is read once, with one ``read`` (only its first
bytes with ``quick``, which checks headers, i.e. shapes, dtypes and lengths, not values).

The per-file rule is :func:`avparse.data.files.validate_feature_file`, which packing shares.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avparse.data.agreement import OutsideShare, outside_share
from avparse.data.files import read_feature_file
from avparse.data.layout import (
    CLIP_ID_LENGTH,
    FEATURE_KINDS,
    HARVEST_KINDS,
    LLP_FILES,
    PER_CLASS_KINDS,
    SEGMENT_KINDS,
    SEGMENTS,
    SPLITS,
    kind_folder,
    task_kinds,
)
from avparse.data.llp import (
    AnnotationError,
    DenseRows,
    WeakLabels,
    clip_id,
    dense_matrix,
    read_dense_rows,
    read_weak,
)
from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.utils.progress import progress as show_progress
from avparse.utils.text import count
from avparse.vocab import AVE, LLP, UNAV, Vocabulary

HARVEST_SPLITS = ("train",)
"""Splits that must have harvests (the student learns from them); others are checked if present."""

WEAK_KEYS = ("train", "val", "test")
DENSE_KEYS = ("dense_audio", "dense_visual")


@dataclass
class SplitFiles:
    """One folder's files for one split."""

    split: str
    expected: int
    present: int = 0
    missing: list[str] = field(default_factory=list)
    """Clip ids of the split without a file."""
    bad: list[tuple[str, str]] = field(default_factory=list)
    """(file name, problem) of files that failed the per-file rule (``data/files.py``)."""
    required: bool = True
    """False where missing files are allowed (harvests of splits the student does not learn from)."""


@dataclass
class FolderReport:
    """One feature or harvest folder of the layout."""

    kind: str
    folder: str
    exists: bool
    splits: dict[str, SplitFiles] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    """``.npy`` files whose clip id is in no split (not validated, harmless but suspicious)."""
    suffix: str = ""
    """What follows the clip id in a file name (UnAV-100's published files: ``_rgb``, ...)."""


@dataclass
class CheckReport:
    """Everything :func:`check_root` found; ``problems()`` lists what is wrong, one line each."""

    root: Path
    quick: bool
    task: str = "llp"
    """The task the root was checked for (``llp``, ``ave``, ``unav``)."""
    annotations: dict[str, str | None] = field(default_factory=dict)
    """Annotation file name -> None when valid, else the problem (``missing`` or the error)."""
    annotation_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Accepted oddities (quirks of the real files, files outside every split, ...)."""
    folders: list[FolderReport] = field(default_factory=list)
    agreement: list[OutsideShare] = field(default_factory=list)
    """Per harvest folder: positives outside the clips' weak labels (not measured with quick)."""
    accept_mismatch: bool = False
    """Whether positives outside the weak labels are a note rather than a problem."""

    def problems(self) -> list[str]:
        out = list(self.annotation_problems)
        if not self.accept_mismatch:
            out.extend(a.describe() for a in self.agreement if a.outside)
        for f in self.folders:
            for s in f.splits.values():
                if s.required:
                    out.extend(
                        f"{f.folder}/{c}{f.suffix}.npy: missing ({s.split})" for c in s.missing
                    )
                out.extend(f"{f.folder}/{name}: {why}" for name, why in s.bad)
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def to_json(self) -> dict:
        return {
            "root": str(self.root),
            "task": self.task,
            "quick": self.quick,
            "ok": self.ok,
            "annotations": self.annotations,
            "notes": self.notes,
            "folders": [
                {
                    "kind": f.kind,
                    "folder": f.folder,
                    "exists": f.exists,
                    "extra": f.extra,
                    "splits": {
                        name: {
                            "expected": s.expected,
                            "present": s.present,
                            "missing": s.missing,
                            "bad": [{"file": n, "problem": p} for n, p in s.bad],
                            "required": s.required,
                        }
                        for name, s in f.splits.items()
                    },
                }
                for f in self.folders
            ],
            "harvest_agreement": [
                {
                    "folder": a.folder,
                    "positives": a.positives,
                    "outside": a.outside,
                    "share": a.share,
                    "clips": list(a.clips),
                }
                for a in self.agreement
            ],
            "problems": self.problems(),
        }


ANNOTATION_ORDER = ("train", "val", "test", "full", "dense_audio", "dense_visual")
"""Keys of ``LLP_FILES`` in checking order: the splits first, so later files can be compared."""


def _check_annotations(root: Path, vocab: Vocabulary, report: CheckReport) -> dict[str, WeakLabels]:
    """Validate the annotation files; returns the weak labels of each split that loaded."""
    weak: dict[str, WeakLabels] = {}
    dense: dict[str, DenseRows] = {}
    for key in ANNOTATION_ORDER:
        name = LLP_FILES[key]
        path = root / name
        if not path.is_file():
            report.annotations[name] = "missing"
            if key == "full":
                report.notes.append(f"{name}: not present (optional, used by no command)")
            else:
                report.annotation_problems.append(f"{name}: missing")
            continue
        try:
            if key in DENSE_KEYS:
                dense[key] = read_dense_rows(path, vocab, reversed_rows="ignore")
                report.notes.extend(dense[key].quirks)
            else:
                labels = read_weak(path, vocab)
                if key in WEAK_KEYS:
                    weak[key] = labels
                elif len(weak) == len(WEAK_KEYS):
                    split_names = {f for w in weak.values() for f in w.filenames}
                    if set(labels.filenames) != split_names:
                        report.notes.append(
                            f"{name}: clips differ from the union of train, val and test"
                        )
            report.annotations[name] = None
        except AnnotationError as exc:
            report.annotations[name] = str(exc)
            report.annotation_problems.append(str(exc))
    _compare_dense_with_weak(weak, dense, vocab, report)
    filenames = {split: w.filenames for split, w in weak.items()}
    owner: dict[str, str] = {}
    for split, names in filenames.items():
        for f in names:
            cid = clip_id(f)
            if cid in owner:
                report.annotation_problems.append(
                    f"clip id {cid!r} ({f}) of {split} is also in {owner[cid]}: "
                    "their feature files would collide"
                )
            else:
                owner[cid] = split
    return weak


def _check_ave_annotations(
    root: Path, vocab: Vocabulary, report: CheckReport
) -> dict[str, WeakLabels]:
    """Validate ``Annotations.txt`` and the split files; returns per split its unique ids with
    the union of their rows' labels (a video id may repeat across rows, as in the real files)."""
    from avparse.data.ave import (
        AVE_FILES,
        AVEAnnotationError,
        read_ave_annotations,
        read_ave_split,
    )

    name = AVE_FILES["annotations"]
    if not (root / name).is_file():
        report.annotations[name] = "missing"
        report.annotation_problems.append(f"{name}: missing")
        return {}
    try:
        clips = read_ave_annotations(root / name, vocab)
    except AVEAnnotationError as exc:
        report.annotations[name] = str(exc)
        report.annotation_problems.append(str(exc))
        return {}
    report.annotations[name] = None
    if clips.quirks:
        more = f" (and {len(clips.quirks) - 1} more)" if len(clips.quirks) > 1 else ""
        report.notes.append(clips.quirks[0] + more)
    all_ids, union = clips.id_labels()
    row_of = {c: i for i, c in enumerate(all_ids)}
    weak: dict[str, WeakLabels] = {}
    for split in SPLITS:
        file = AVE_FILES[split]
        if not (root / file).is_file():
            report.annotations[file] = "missing"
            report.annotation_problems.append(f"{file}: missing")
            continue
        try:
            sub = clips.subset(read_ave_split(root / file, len(clips)))
        except AVEAnnotationError as exc:
            report.annotations[file] = str(exc)
            report.annotation_problems.append(str(exc))
            continue
        report.annotations[file] = None
        ids = list(dict.fromkeys(sub.ids))  # a file holds the classes of every row of its id
        weak[split] = WeakLabels(ids, union[[row_of[c] for c in ids]], vocab)
    pairs = [(a, b) for a in weak for b in weak if a < b]
    both = {c for a, b in pairs for c in set(weak[a].filenames) & set(weak[b].filenames)}
    if both:
        report.notes.append(
            f"{count(len(both), 'video id has', 'video ids have')} rows in more than one split "
            "(their files are shared), "
            f"e.g. {sorted(both)[0]!r}"
        )
    return weak


def _compare_dense_with_weak(
    weak: dict[str, WeakLabels], dense: dict[str, DenseRows], vocab: Vocabulary, report: CheckReport
) -> None:
    """Notes (not problems: the real files have both) on dense labels that disagree with tags."""
    scored = [s for s in ("val", "test") if s in weak]
    if not scored:
        return
    names = {f for s in scored for f in weak[s].filenames}
    for key, rows in dense.items():
        outside = {n for n in rows.filenames if n not in names}
        if outside:
            report.notes.append(
                f"{LLP_FILES[key]}: {count(len(outside), 'clip is', 'clips are')} in neither val "
                "nor test "
                f"(never scored), e.g. {sorted(outside)[0]!r}"
            )
    if len(dense) < len(DENSE_KEYS):
        return
    for split in scored:
        tags = weak[split].labels
        events = np.zeros_like(tags)
        for rows in dense.values():
            events |= dense_matrix(rows, weak[split].filenames, len(vocab))[0].any(axis=1)
        untagged, silent = int((events & ~tags).sum()), int((tags & ~events).sum())
        if untagged or silent:
            report.notes.append(
                f"{split}: {count(untagged, '(clip, class) pair has', '(clip, class) pairs have')} "
                f"dense events but no weak tag, {count(silent, 'weak tag has', 'weak tags have')} "
                "no dense event (scoring uses the dense labels)"
            )


def npy_files(folder: Path, suffix: str = "") -> dict[str, str]:
    """Clip id -> file name of the ``<id><suffix>.npy`` files in ``folder`` (one scandir, no
    stat; hidden files are passed over)."""
    end = f"{suffix}.npy"
    out = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(end) and not name.startswith(".") and len(name) > len(end):
                out[name[: -len(end)]] = name
    return out


def _check_ave_h5(root: Path, quick: bool, report: CheckReport) -> None:
    """The official AVE feature files (AVE-ECCV18 ``.h5``), where an AVE root has them."""
    from avparse.data.ave_h5 import check_ave_h5, file_shapes, is_ave_h5_root

    if not is_ave_h5_root(root):
        return
    problems, _ = check_ave_h5(root, quick=quick)
    report.annotation_problems.extend(problems)
    shapes = ", ".join(
        f"{name} {'absent' if shape is None else tuple(shape)}"
        for name, shape in file_shapes(root).items()
    )
    report.notes.append(f"official AVE features (AVE-ECCV18): {shapes}")


def _check_event_features(root: Path, vocab: Vocabulary, report: CheckReport) -> None:
    """UWAV's class text embeddings (``feats_C*/event_feats/all_event_feats.npy``), if present."""
    from avparse.data.layout import EVENT_FEATURE_FOLDERS, UWAV_EVENT_FEATURES

    widths = {
        "visual": FEATURE_KINDS["clip_segments"].dim,
        "audio": FEATURE_KINDS["clap_segments"].dim,
    }
    for modality, folder in EVENT_FEATURE_FOLDERS.items():
        path = root / folder / UWAV_EVENT_FEATURES
        if not path.is_file():
            continue
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            report.annotation_problems.append(f"{path}: not a readable .npy file ({exc})")
            continue
        want = (len(vocab), widths[modality])
        if arr.shape != want:
            report.annotation_problems.append(
                f"{path}: shape {arr.shape}, expected {want} (one row per {vocab.name} class)"
            )
        elif not np.isfinite(arr).all():
            report.annotation_problems.append(f"{path}: non-finite values")
        else:
            report.notes.append(f"{folder}/{UWAV_EVENT_FEATURES}: UWAV's class embeddings {want}")


FileJob = tuple[SplitFiles, str, Path, str, str]
"""A feature file to read: (its split's counts, feature kind, path, file name, clip id)."""


def queue_split(
    jobs: list[FileJob],
    entry: FolderReport,
    path: Path,
    split: str,
    ids: Sequence[str],
    files: dict[str, str],
    *,
    required: bool,
) -> None:
    """Count ``split``'s clips in ``entry`` (folder ``path``, ``files``: clip id -> file name):
    a clip without a file is missing, each file is queued in ``jobs``."""
    sf = SplitFiles(split, len(ids), required=required)
    entry.splits[split] = sf
    for cid in ids:
        name = files.get(cid)
        if name is None:
            sf.missing.append(cid)
        else:
            sf.present += 1
            jobs.append((sf, entry.kind, path / name, name, cid))


def read_files(
    jobs: list[FileJob],
    read: Callable[[FileJob], str | None],
    *,
    workers: int,
    progress: bool,
) -> None:
    """Run ``read`` (a file's problem, or None) on every queued file in ``workers`` threads;
    each problem is listed under its split as (file name, problem), in queue order."""

    def run(job: FileJob) -> tuple[FileJob, str | None]:
        return job, read(job)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(run, jobs)
        shown = show_progress(results, desc="check", total=len(jobs), unit="file", enabled=progress)
        for (sf, _, _, name, _), problem in shown:
            if problem is not None:
                sf.bad.append((name, problem))


_ROOT_FOLDERS = ("feats", "CLIP", "CLAP", "feats_CLIP", "feats_CLAP", "temporal")
"""Top-level folders of a data root: with none of them and no annotation file, a folder given to
``data check`` is not one."""


def check_root(
    root: str | Path,
    *,
    task: str | None = None,
    quick: bool = False,
    vocab: Vocabulary | None = None,
    workers: int = 4,
    progress: bool = False,
    accept_mismatch: bool = False,
) -> CheckReport:
    """Check a data root in the published layout (see the module docstring).

    Args:
        root: the data root.
        task: ``llp``, ``ave`` or ``unav``; None recognises it from the annotation files
            (:func:`avparse.data.roots.root_task`; LLP when the root shows none).
        vocab: the classes (default: the task's).
        quick: read only ``.npy`` headers (shape, dtype, length), not values.
        workers: threads reading files (numpy releases the GIL while it reads and checks).
        progress: show progress (``avparse.utils.progress``) while files are read.
        accept_mismatch: harvest positives outside the weak labels are a note, not a problem.
    """
    root = Path(root)
    if not root.is_dir():
        raise AvparseError(f"{root}: data root not found")
    from avparse.data.roots import TASK_NAMES, root_task

    if (
        task is None
        and root_task(root) is None
        and not any((root / top).is_dir() for top in _ROOT_FOLDERS)
    ):  # a wrong folder: one line, not a report of everything missing
        raise AvparseError(
            f"{root}: not a data root (no AVVP_*.csv, Annotations.txt or "
            "unav100_annotations.json, no feats/, CLIP/ or CLAP/ folder); --task llp|ave|unav "
            "checks it anyway"
        )
    task = task or root_task(root) or "llp"
    if task not in TASK_NAMES:
        raise AvparseError(f"unknown task {task!r} for data check (known: {', '.join(TASK_NAMES)})")
    if task == "unav":  # UnAV-100: one annotation file, features of any length
        from avparse.data.unav_check import check_unav_root

        return check_unav_root(
            root, quick=quick, vocab=vocab or UNAV, workers=workers, progress=progress,
            accept_mismatch=accept_mismatch,
        )  # fmt: skip
    if vocab is None:
        vocab = AVE if task == "ave" else LLP
    report = CheckReport(root=root, quick=quick, task=task, accept_mismatch=accept_mismatch)
    if task == "ave":
        weak = _check_ave_annotations(root, vocab, report)
        _check_ave_h5(root, quick, report)
    else:
        weak = _check_annotations(root, vocab, report)
    filenames = {split: w.filenames for split, w in weak.items()}
    split_ids = {s: sorted({clip_id(f) for f in filenames[s]}) for s in SPLITS if s in filenames}
    all_ids = {c for ids in split_ids.values() for c in ids}
    jobs: list[FileJob] = []
    _check_event_features(root, vocab, report)
    for kind in [*task_kinds("llp"), *SEGMENT_KINDS, *PER_CLASS_KINDS]:
        folder = kind_folder(kind)
        path = root / folder
        entry = FolderReport(kind, folder, path.is_dir())
        if kind in SEGMENT_KINDS and not entry.exists:
            continue  # segment embeddings (teacher inputs) are listed only where present
        report.folders.append(entry)
        if not entry.exists:
            continue
        files = npy_files(path)
        entry.extra = sorted(files[c] for c in files if c not in all_ids)
        misnamed = [c for c in files if c not in all_ids and c[:CLIP_ID_LENGTH] in all_ids]
        if misnamed:
            report.notes.append(
                f"{folder}: {count(len(misnamed), 'file')} such as {files[misnamed[0]]!r} "
                f"{'is' if len(misnamed) == 1 else 'are'} named by more "
                f"than the {CLIP_ID_LENGTH}-character clip id, which is what readers look for"
            )
        for split, ids in split_ids.items():
            required = kind not in PER_CLASS_KINDS or split in HARVEST_SPLITS
            queue_split(jobs, entry, path, split, ids, files, required=required)

    harvests: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    """(kind, split) -> clip id -> harvest values, for the agreement with the tags."""

    def read(job: FileJob) -> str | None:
        sf, kind, path, _, cid = job
        length = SEGMENTS if kind in SEGMENT_KINDS else None  # 10 rows in 10-s clips
        values, problem = read_feature_file(
            path, kind, num_classes=len(vocab), quick=quick, length=length
        )
        if values is not None and kind in HARVEST_KINDS:
            harvests.setdefault((kind, sf.split), {})[cid] = values
        return problem

    read_files(jobs, read, workers=workers, progress=progress)
    if not quick:
        report.agreement = harvest_agreement(
            {s: (w.ids, w.labels) for s, w in weak.items()}, harvests
        )
    return report


def harvest_agreement(
    tags: dict[str, tuple[Sequence[str], np.ndarray]],
    harvests: dict[tuple[str, str], dict[str, np.ndarray]],
) -> list[OutsideShare]:
    """Harvest positives outside the weak labels, per harvest folder, over the splits that have
    files. ``tags``: split -> (clip ids, (clips, classes) weak labels); ``harvests``: (kind,
    split) -> clip id -> (T, classes) values; clips of other lengths are padded with zeros (no
    positive: neutral)."""
    out = []
    for kind, folder in HARVEST_KINDS.items():
        parts, rows, ids = [], [], []
        for split, (split_ids, labels) in tags.items():
            found = harvests.get((kind, split), {})
            for cid, row in zip(split_ids, labels, strict=True):
                if cid in found:
                    parts.append(np.asarray(found[cid]))
                    rows.append(row)
                    ids.append(cid)
        if parts:
            padded, _ = Ragged.from_arrays(parts).pad()
            out.append(outside_share(folder, padded, np.stack(rows), ids))
    return out


def format_report(report: CheckReport, *, show: int = 10) -> str:
    """A readable summary: annotation files, a folder x split table, the first ``show`` problems."""
    lines = [
        f"data root {report.root} (task {report.task})"
        + (" (quick: headers only)" if report.quick else "")
    ]
    lines.append("annotation files:")
    for name, problem in report.annotations.items():
        lines.append(f"  {name:<24} {'ok' if problem is None else problem}")
    lines.append("")
    w = max([28, *(len(f.folder) + 2 for f in report.folders)])
    header = f"{'folder':<{w}}{'split':<8}{'present':>9}{'missing':>9}{'extra':>7}{'bad':>6}"
    lines.append(header)
    for f in report.folders:
        if not f.exists:
            lines.append(f"{f.folder:<{w}}{'-':<8}{'(absent)':>9}")
            continue
        for i, (name, s) in enumerate(f.splits.items()):
            missing = str(len(s.missing)) + ("" if s.required or not s.missing else "*")
            extra = str(len(f.extra)) if i == 0 else ""
            lines.append(
                f"{f.folder if i == 0 else '':<{w}}{name:<8}{s.present:>9}{missing:>9}"
                f"{extra:>7}{len(s.bad):>6}"
            )
    if any(not s.required and s.missing for f in report.folders for s in f.splits.values()):
        lines.append("* allowed: harvests are needed for the train split only")
    if any(f.extra for f in report.folders):
        lines.append("extra: .npy files of clips in no split (not validated)")
    for note in report.notes:
        lines.append(f"note: {note}")
    for a in report.agreement:
        if not a.outside:
            lines.append(
                f"{a.folder}: {count(a.positives, 'harvest positive')}, none outside the weak labels"
            )
        elif report.accept_mismatch:
            lines.append(f"note (accepted): {a.describe()}")
    problems = report.problems()
    lines.append("")
    if not problems:
        lines.append("OK: no problems found")
    else:
        lines.append(f"{count(len(problems), 'problem')}:")
        show = max(show, 0)
        lines.extend(f"  {p}" for p in problems[:show])
        if len(problems) > show:
            lines.append(f"  ... and {len(problems) - show} more (--show N, or --json)")
    return "\n".join(lines)
