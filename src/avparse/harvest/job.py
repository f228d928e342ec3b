"""The harvest job: videos + weak labels -> teacher features, logits and segment labels.

Pipeline: worker threads decode clips (PyAV) and build CLAP's mel inputs ahead of the model, the
main thread runs CLIP and CLAP on batches of clips, applies the VALOR rule and writes each clip's
files atomically; with ``r2plus1d`` set, R(2+1)D-18 snippet features (the student's 3D input)
are computed in the same pass from frames decoded at 8 fps. A clip is skipped when all the files
asked for exist; a clip whose teacher files exist but whose R(2+1)D features do not gets only
those; a clip whose features and logits exist but whose labels do not (new thresholds,
``--overwrite`` of labels) is relabelled from the saved logits without a model pass. Failures
(missing or undecodable videos) are recorded and the other clips finish. Under ``torchrun``
rank ``r`` of ``w`` takes the clips at sorted positions ``i % w == r``.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from avparse import __version__
from avparse.data.llp import clip_id, read_weak
from avparse.errors import AvparseError, first_line
from avparse.features.sampling import SNIPPET_FPS, SNIPPET_SIZE
from avparse.harvest.outputs import (
    FAILURES,
    MANIFEST,
    NO_AUDIO_FOLDER,
    NO_AUDIO_REPORT,
    ClipOutputs,
)
from avparse.media.decode import WINDOW_SECONDS, VideoDecodeError, chunk_bounds, decode_clip
from avparse.teachers.clap import DEFAULT_CLAP
from avparse.teachers.clip import DEFAULT_CLIP
from avparse.teachers.rule import elaborate, fused_scores
from avparse.utils.atomic import write_json, write_text
from avparse.utils.jsonio import read_json_object
from avparse.vocab import Vocabulary, get_vocabulary, load_thresholds

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")
TEACHER_MODES = ("modality", "fused")
DOWNLOAD = "download"
"""``--r2plus1d download``: torchvision's published R(2+1)D-18 weights through torch.hub."""


@dataclass
class HarvestConfig:
    """Everything a harvest run needs; the CLI fills it from its flags."""

    videos: Path
    labels: Path
    out: Path
    clip_model: str = DEFAULT_CLIP
    clap_model: str = DEFAULT_CLAP
    device: str | None = None
    batch_size: int = 8
    task: str = "llp"
    thresholds: Path | None = None
    teacher: str = "modality"
    workers: int = 2
    overwrite: bool = False
    progress: bool = True
    r2plus1d: str | None = None
    """R(2+1)D-18 weights (a ``.pth`` file, or ``download``) to also write ``feats/r2plus1d_18``;
    None writes no 3D features."""
    snippet_fps: float = float(SNIPPET_FPS)
    snippet_size: int = SNIPPET_SIZE


@dataclass
class ClipJob:
    clip: str
    filename: str
    weak: np.ndarray
    video: Path | None = None
    teachers: bool = True
    """Run the teachers (False: their files exist and only R(2+1)D features are missing)."""
    motion: bool = False
    """Compute R(2+1)D-18 features."""


@dataclass
class HarvestResult:
    """What a run did; ``failures`` and ``no_audio`` are ``(clip, file, reason)`` rows."""

    total: int = 0
    harvested: int = 0
    """Clips run through the teachers."""
    motion: int = 0
    """Clips whose R(2+1)D-18 features were computed."""
    relabelled: int = 0
    skipped: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    no_audio: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the whole run (model loading included)."""
    model_seconds: float = 0.0
    """Wall time of the decode + model loop, which ``clips_per_second`` uses."""
    rank: int = 0
    world: int = 1
    labelled: bool = True
    """False when the vocabulary had no thresholds: only features and logits were written."""

    @property
    def clips_per_second(self) -> float:
        return self.harvested / self.model_seconds if self.model_seconds > 0 else 0.0


# --- inputs ------------------------------------------------------------------------------------


def read_labels(
    path: Path, task: str, vocab: Vocabulary
) -> tuple[list[str], list[str], np.ndarray]:
    """(filenames, clip ids, weak (N, C) bool) from an LLP weak CSV or AVE ``Annotations.txt``."""
    if task == "ave":
        from avparse.data.ave import read_ave_annotations

        ids, labels = read_ave_annotations(path, vocab).id_labels()
        return list(ids), list(ids), np.asarray(labels, bool)
    weak = read_weak(path, vocab)
    return list(weak.filenames), weak.ids, np.asarray(weak.labels, bool)


def index_videos(folder: Path) -> dict[str, Path]:
    """Video files under ``folder`` (recursively) by file stem."""
    if not folder.is_dir():
        raise AvparseError(f"{folder}: video folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            found.setdefault(path.stem, path)
    return found


def find_video(videos: dict[str, Path], filename: str) -> Path | None:
    """A clip's video by its full filename (with or without extension) or its 11-character id."""
    stem = Path(filename).stem if Path(filename).suffix.lower() in VIDEO_EXTENSIONS else filename
    return videos.get(filename) or videos.get(stem) or videos.get(clip_id(filename))


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard(jobs: list[ClipJob], rank: int, world: int) -> list[ClipJob]:
    """The jobs of ``rank``: sorted positions ``i % world == rank`` (no clip done twice)."""
    return [j for i, j in enumerate(jobs) if i % world == rank]


def plan(
    filenames: list[str], ids: list[str], weak: np.ndarray, videos: dict[str, Path]
) -> tuple[list[ClipJob], list[tuple[str, str, str]]]:
    """Jobs sorted by clip id, and failures for clips without a video or with a repeated id."""
    jobs: dict[str, ClipJob] = {}
    failures = []
    for name, cid, row in zip(filenames, ids, weak, strict=True):
        if cid in jobs:
            failures.append((cid, name, f"clip id repeats {jobs[cid].filename!r}; harvested once"))
            continue
        jobs[cid] = ClipJob(cid, name, row, find_video(videos, name))
    ordered = [jobs[c] for c in sorted(jobs)]
    return ordered, failures


# --- the run -----------------------------------------------------------------------------------


@dataclass
class _Prepared:
    job: ClipJob
    frames: np.ndarray | None = None
    chunks: Any = None
    whole: Any = None
    silent: bool = False
    audio_note: str = ""
    rate_frames: np.ndarray | None = None
    error: str = ""


class _Teachers:
    """The two teachers, loaded on first use: clips that fail to decode never cost a model load."""

    def __init__(self, config: HarvestConfig, vocab: Vocabulary) -> None:
        from avparse.teachers.clap import AudioInputBuilder
        from avparse.teachers.loading import check_source

        check_source(config.clip_model, "visual teacher (CLIP)")
        check_source(config.clap_model, "audio teacher (CLAP)")
        weights = config.r2plus1d
        if weights not in (None, DOWNLOAD) and not Path(weights).is_file():
            raise AvparseError(f"{weights}: R(2+1)D-18 weights file not found")
        self.config = config
        self.vocab = vocab
        self.inputs = AudioInputBuilder(config.clap_model)
        self._models: tuple[Any, Any] | None = None
        self._motion: Any = None
        self.load_seconds = 0.0

    @property
    def motion(self) -> Any:
        """R(2+1)D-18, loaded on first use."""
        if self._motion is None:
            began = time.perf_counter()
            from avparse.features.r2plus1d import load_r2plus1d18
            from avparse.teachers.loading import pick_device

            weights = self.config.r2plus1d
            device = pick_device(_rank_device(self.config.device))
            self._motion = load_r2plus1d18(None if weights == DOWNLOAD else weights, device=device)
            self.load_seconds += time.perf_counter() - began
        return self._motion

    def _load(self) -> tuple[Any, Any]:
        if self._models is None:
            began = time.perf_counter()
            from avparse.teachers.clap import AudioTeacher
            from avparse.teachers.clip import VisualTeacher

            config = self.config
            device = _rank_device(config.device)
            per_call = 10 * config.batch_size  # one model call per batch of clips
            visual = VisualTeacher(
                config.clip_model, vocab=self.vocab, device=device, batch_frames=per_call
            )
            audio = AudioTeacher(
                config.clap_model,
                vocab=self.vocab,
                device=device,
                batch_waves=per_call,
                inputs=self.inputs,
            )
            self._models = (visual, audio)
            self.load_seconds += time.perf_counter() - began
        return self._models

    @property
    def visual(self) -> Any:
        return self._load()[0]

    @property
    def audio(self) -> Any:
        return self._load()[1]


def _rank_device(device: str | None) -> str | None:
    """Under torchrun, a bare ``cuda`` (or the default) means this process's ``cuda:LOCAL_RANK``."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or device not in (None, "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def _thresholds(vocab: Vocabulary) -> dict[str, np.ndarray] | None:
    try:
        return {m: np.asarray(vocab.thresholds(m), np.float32) for m in ("visual", "audio")}
    except AvparseError:
        return None


def manifest(config: HarvestConfig, vocab: Vocabulary, thresholds: dict | None) -> dict:
    """The settings that decide a harvest's content (stored as ``harvest.json``)."""
    return {
        "avparse": __version__,
        "task": config.task,
        "vocabulary": vocab.name,
        "classes": vocab.names,
        "clip_model": str(config.clip_model),
        "clap_model": str(config.clap_model),
        "teacher": config.teacher,
        "window_seconds": WINDOW_SECONDS,
        "thresholds": None
        if thresholds is None
        else {m: [float(v) for v in t] for m, t in thresholds.items()},
        "motion": _motion_settings(config),
    }


def _motion_settings(config: HarvestConfig) -> dict | None:
    """What decides the R(2+1)D-18 features (None: not asked for in this run)."""
    if config.r2plus1d is None:
        return None
    weights = (
        config.r2plus1d if config.r2plus1d == DOWNLOAD else str(Path(config.r2plus1d).resolve())
    )
    return {
        "weights": weights,
        "snippet_fps": float(config.snippet_fps),
        "snippet_size": int(config.snippet_size),
    }


def _check_motion(root: Path, current: dict, overwrite: bool) -> bool:
    """Compare the R(2+1)D-18 settings with the root's; True when its files must be redone.

    A run that asks for no R(2+1)D features keeps the recorded settings (``current`` is updated);
    a first request adds features to finished clips; other settings are refused unless
    ``--overwrite``, which recomputes the R(2+1)D features only.
    """
    import json

    path = root / MANIFEST
    old = None
    if path.is_file():
        try:
            old = json.loads(path.read_text()).get("motion")
        except (OSError, json.JSONDecodeError, AttributeError):
            old = None  # _check_manifest has already refused an unreadable manifest
    if current.get("motion") is None:
        current["motion"] = old
        return False
    if old is None or old == current["motion"]:
        return False
    if not overwrite:
        changed = [k for k in current["motion"] if old.get(k) != current["motion"][k]]
        raise AvparseError(
            f"{path}: {root} has R(2+1)D-18 features made with other settings "
            f"({', '.join(changed)}); use another --out, or --overwrite to redo them"
        )
    return True


def _check_manifest(root: Path, current: dict, overwrite: bool) -> str:
    """Compare with the harvest already in ``root``: ``"same"``, ``"labels"`` or ``"models"``.

    Other models or classes are refused (use another ``--out``, or ``--overwrite`` to redo all).
    Other thresholds or teacher mode are refused unless ``--overwrite``, which then relabels from
    the saved logits without a model pass; a root harvested without thresholds (logits only) is
    labelled without ``--overwrite``.
    """
    path = root / MANIFEST
    if not path.is_file():
        return "same"
    old = read_json_object(path, "harvest manifest")
    model_keys = ("task", "classes", "clip_model", "clap_model")
    changed = [k for k in (*model_keys, "teacher", "thresholds") if old.get(k) != current.get(k)]
    if not changed:
        return "same"
    if old.get("thresholds") is None and not any(k in model_keys for k in changed):
        return "labels"  # logits only so far (no thresholds): labelling overwrites nothing
    if not overwrite:
        raise AvparseError(
            f"{path}: {root} was harvested with other settings ({', '.join(changed)}); "
            "use another --out, or --overwrite to redo it"
        )
    return "models" if any(k in model_keys for k in changed) else "labels"


def _decode(job: ClipJob, inputs: Any, config: HarvestConfig) -> _Prepared:
    """Decode one clip and build CLAP inputs with ``inputs`` (runs in a worker thread).

    A clip without audio is heard as silence: CLAP's inputs are built from zeros of the
    window's length. With ``job.motion`` the frames at the snippet rate are decoded too.
    """
    prepared = _Prepared(job)
    if job.video is None:
        prepared.error = "video not found"
        return prepared
    try:
        size = int(config.snippet_size)
        clip = decode_clip(
            job.video,
            teacher_frames=job.teachers,
            audio=job.teachers,
            fps=config.snippet_fps if job.motion else None,
            fps_size=(size, size) if job.motion else None,
        )
        if job.motion:
            if clip.rate_frames is None or len(clip.rate_frames) == 0:
                raise VideoDecodeError(f"{job.video}: no frames decoded for R(2+1)D-18 snippets")
            prepared.rate_frames = clip.rate_frames
        if job.teachers:
            prepared.frames = clip.frames
            wave = clip.audio
            if wave is None:
                from avparse.features.extract import silence

                prepared.silent = True
                prepared.audio_note = clip.audio_note or "no audio"
                wave = silence(clip.seconds)
            chunks = [wave[s : s + n] for s, n in chunk_bounds(len(wave))]
            prepared.chunks = inputs.prepare(chunks)
            prepared.whole = inputs.prepare([wave])
    except VideoDecodeError as exc:
        prepared.error = str(exc).removeprefix(f"{job.video}: ")
    except Exception as exc:  # one bad clip must not stop a batch job; the reason is recorded
        prepared.error = f"unexpected {type(exc).__name__}: {first_line(exc)}"
    return prepared


def _ahead(
    pool: ThreadPoolExecutor, jobs: list[ClipJob], inputs: Any, config: HarvestConfig, depth: int
) -> Iterator[_Prepared]:
    """Decoded clips in job order, with up to ``depth`` clips decoding ahead."""
    queue: collections.deque[Future] = collections.deque()
    it = iter(jobs)
    for job in it:
        queue.append(pool.submit(_decode, job, inputs, config))
        if len(queue) >= depth:
            break
    while queue:
        yield queue.popleft().result()
        following = next(it, None)
        if following is not None:
            queue.append(pool.submit(_decode, following, inputs, config))


def _label(
    out: ClipOutputs,
    weak: np.ndarray,
    scores: dict[str, np.ndarray],
    thresholds: dict[str, np.ndarray],
    teacher: str,
    silent: bool = False,
) -> None:
    """Apply the rule; a silent clip hears nothing (all-zero audio labels, visual rule alone)."""
    if silent:
        hard, soft = elaborate(scores["visual"], thresholds["visual"], weak)
        zeros = np.zeros_like(soft)
        out.write_labels("audio", zeros, zeros)
        out.write_labels("visual", hard, soft)
        return
    if teacher == "fused":
        fused = fused_scores(
            scores["visual"], scores["audio"], thresholds["visual"], thresholds["audio"]
        )
        hard, soft = elaborate(fused, np.zeros_like(thresholds["visual"]), weak)
        for m in scores:
            out.write_labels(m, hard, soft)
        return
    for m, s in scores.items():
        hard, soft = elaborate(s, thresholds[m], weak)
        out.write_labels(m, hard, soft)


def _run_batch(
    batch: list[_Prepared],
    teachers: _Teachers,
    root: Path,
    thresholds: dict[str, np.ndarray] | None,
    teacher: str,
    result: HarvestResult,
    snippet_size: int = SNIPPET_SIZE,
) -> None:
    moving = [p for p in batch if p.job.motion]
    if moving:
        from avparse.features.extract import motion_features

        snippets = cast(
            list[np.ndarray], [p.rate_frames for p in moving]
        )  # decoded for motion jobs
        feats = motion_features(teachers.motion, snippets, size=snippet_size)
        for p, f in zip(moving, feats, strict=True):
            ClipOutputs(root, p.job.clip).write_motion(f)
            result.motion += 1
    taught = [p for p in batch if p.job.teachers]
    if not taught:
        return
    from avparse.teachers.clap import AudioInputs

    frames = np.concatenate([p.frames for p in taught])
    emb = teachers.visual.embed_frames(frames)
    vis_scores = teachers.visual.scores(emb)
    chunk_emb = teachers.audio.embed(AudioInputs.concat([p.chunks for p in taught]))
    aud_scores = teachers.audio.scores(chunk_emb)
    maps = teachers.audio.token_maps(AudioInputs.concat([p.whole for p in taught]))
    for i, p in enumerate(taught):
        out = ClipOutputs(root, p.job.clip)
        seg = slice(i * 10, (i + 1) * 10)
        if p.silent:  # the marker first: CLAP files without it would be taken for heard audio
            out.mark_no_audio(str(p.job.video), p.audio_note)
            result.no_audio.append((p.job.clip, str(p.job.video), p.audio_note))
        else:
            out.no_audio.unlink(missing_ok=True)
        scores = {"visual": vis_scores[seg], "audio": aud_scores[seg]}
        out.write_model("visual", emb[seg], scores["visual"])
        out.write_model("audio", maps[i], scores["audio"])
        if thresholds is not None:
            _label(out, p.job.weak, scores, thresholds, teacher, p.silent)
        result.harvested += 1


def run_harvest(config: HarvestConfig) -> HarvestResult:
    """Harvest every clip of ``config.labels`` found in ``config.videos`` into ``config.out``."""
    if config.teacher not in TEACHER_MODES:
        raise AvparseError(f"unknown teacher {config.teacher!r} (expected modality or fused)")
    if config.batch_size < 1:
        raise AvparseError("--batch-size must be at least 1")
    if config.snippet_fps <= 0 or config.snippet_size < 1:
        raise AvparseError("--snippet-fps and --snippet-size must be positive")
    start = time.perf_counter()
    vocab = get_vocabulary(config.task)
    if config.thresholds is not None:
        vocab = load_thresholds(config.thresholds, vocab)
    thresholds = _thresholds(vocab)
    root = Path(config.out)
    info = manifest(config, vocab, thresholds)
    change = _check_manifest(root, info, config.overwrite)
    redo_motion = _check_motion(root, info, config.overwrite)
    filenames, ids, weak = read_labels(Path(config.labels), config.task, vocab)
    jobs, failures = plan(filenames, ids, weak, index_videos(Path(config.videos)))
    rank, world = distributed_rank()
    mine = shard(jobs, rank, world)
    result = HarvestResult(total=len(mine), rank=rank, world=world, labelled=thresholds is not None)
    result.failures += [f for i, f in enumerate(failures) if i % world == rank]

    if world > 1:
        _barrier()  # every rank has compared with the old manifest before any rank writes
    # Forget what the new settings replace *before* writing the new manifest, so an interrupted
    # run resumes correctly instead of mixing old and new files under one manifest.
    for job in mine:
        if change == "models":
            ClipOutputs(root, job.clip).remove_all()
        elif change == "labels":
            ClipOutputs(root, job.clip).remove_labels()
        if redo_motion:
            ClipOutputs(root, job.clip).motion.unlink(missing_ok=True)
    write_json(root / MANIFEST, info)
    # --overwrite with the same settings redoes everything; with new R(2+1)D settings only those.
    redo_models = config.overwrite and change == "same" and not redo_motion
    todo, relabel = [], []
    for job in mine:
        out = ClipOutputs(root, job.clip)
        if job.video is None:
            result.failures.append((job.clip, job.filename, "video not found"))
            continue
        job.teachers = redo_models or not out.model_done()
        job.motion = config.r2plus1d is not None and (redo_models or not out.motion.is_file())
        if job.teachers or job.motion:
            todo.append(job)
        if not job.teachers and thresholds is not None and not out.labels_done():
            relabel.append(job)
        elif not (job.teachers or job.motion):
            result.skipped += 1
    for job in relabel:
        out = ClipOutputs(root, job.clip)
        _label(out, job.weak, out.load_scores(), thresholds or {}, config.teacher, out.silent)
        result.relabelled += 1
    if todo:
        _harvest(todo, config, vocab, root, thresholds, result)
    result.seconds = time.perf_counter() - start
    _write_reports(root, result)
    return result


def _harvest(
    todo: list[ClipJob],
    config: HarvestConfig,
    vocab: Vocabulary,
    root: Path,
    thresholds: dict[str, np.ndarray] | None,
    result: HarvestResult,
) -> None:
    from tqdm import tqdm

    teachers = _Teachers(config, vocab)
    began = time.perf_counter()
    bar = tqdm(total=len(todo), unit="clip", desc="harvest", disable=not config.progress)
    batch: list[_Prepared] = []
    depth = max(2 * config.batch_size, config.workers)
    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        for prepared in _ahead(pool, todo, teachers.inputs, config, depth):
            if prepared.error:
                result.failures.append(
                    (
                        prepared.job.clip,
                        str(prepared.job.video or prepared.job.filename),
                        prepared.error,
                    )
                )
                bar.update(1)
                continue
            batch.append(prepared)
            if len(batch) == config.batch_size:
                _run_batch(
                    batch, teachers, root, thresholds, config.teacher, result, config.snippet_size
                )
                bar.update(len(batch))
                batch = []
        if batch:
            _run_batch(
                batch, teachers, root, thresholds, config.teacher, result, config.snippet_size
            )
            bar.update(len(batch))
    bar.close()
    result.model_seconds = time.perf_counter() - began - teachers.load_seconds


# --- reports -----------------------------------------------------------------------------------


def _tsv(rows: list[tuple[str, str, str]]) -> str:
    lines = ["clip\tfile\treason"] + ["\t".join(r) for r in sorted(rows)]
    return "\n".join(lines) + "\n"


def _write_reports(root: Path, result: HarvestResult) -> None:
    """Failures of this run (merged over ranks) and all clips recorded without audio."""
    if result.world == 1:
        write_text(root / FAILURES, _tsv(result.failures))
        _write_no_audio(root)
        return
    write_text(root / f"{FAILURES}.rank{result.rank}", _tsv(result.failures))
    if not _barrier():
        return
    if result.rank == 0:
        rows: list[tuple[str, str, str]] = []
        for r in range(result.world):
            part = root / f"{FAILURES}.rank{r}"
            if part.is_file():
                for line in part.read_text().splitlines()[1:]:
                    if line:
                        clip, file, reason = line.split("\t", 2)
                        rows.append((clip, file, reason))
                part.unlink()
        write_text(root / FAILURES, _tsv(rows))
        _write_no_audio(root)
    _barrier()  # rank 0 has merged; then leave the process group cleanly
    import torch.distributed as dist

    dist.destroy_process_group()


def _write_no_audio(root: Path) -> None:
    folder = root / NO_AUDIO_FOLDER
    rows = []
    for p in sorted(folder.glob("*.txt")):
        if not p.name.startswith("."):
            video, _, reason = p.read_text().strip().partition("\t")
            rows.append((p.stem, video, reason))
    if rows or (root / NO_AUDIO_REPORT).exists():
        write_text(root / NO_AUDIO_REPORT, _tsv(rows))


def _barrier() -> bool:
    """Wait for every rank (gloo process group from torchrun's environment); False if none."""
    try:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        dist.barrier()
        return True
    except (ImportError, RuntimeError, ValueError):
        return False


def result_summary(result: HarvestResult) -> dict:
    data = asdict(result)
    data["clips_per_second"] = result.clips_per_second
    return data
