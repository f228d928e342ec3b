"""Whole-video harvests (``--span full``): videos of any length, memory flat in their length.

A video of ``T`` one-second segments (:func:`avparse.media.segment_count` of its duration, or
``ceil(duration)`` from its labels: UnAV-100) is read as consecutive 10 s windows
(:func:`avparse.media.segment_windows`); each window is decoded on its own (one seek, then only
its packets) by the decoding threads, so at most ``depth`` windows are held at once whatever the
video's length. The models run on batches of windows (of one or several videos); each window
gives one CLIP image embedding and CLIP logits per segment (its frame, the published frame rule
with one frame per segment) and one CLAP embedding and CLAP logits per segment (its one-second
chunk). The per-segment rows of a video (a few kB per second) are gathered until its last window,
then written as ``feats_CLIP/segment_feats`` (T, D), ``feats_CLAP/segment_feats`` (T, D'),
logits (T, C) and, with thresholds, labels (T, C) inside its weak labels.

A video that fails in any window is recorded as failed as a whole; nothing of it is written. A
video without sound is heard as silence (``CLAP/no_audio``), an audio-only file seen as black
frames (``CLIP/no_video``), as in 10 s harvests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avparse.errors import AvparseError, first_line
from avparse.harvest.labels import Thresholds, label_clip
from avparse.harvest.models import HarvestModels
from avparse.harvest.outputs import ClipOutputs
from avparse.harvest.plan import ClipJob
from avparse.harvest.prefetch import ahead, black_frames
from avparse.media.decode import (
    TEACHER_SIZE,
    VideoDecodeError,
    decode_clip,
    media_duration,
    segment_chunks,
    segment_count,
    segment_windows,
)
from avparse.teachers.clip import frame_decoding
from avparse.utils.progress import progress
from avparse.vocab import Vocabulary

if TYPE_CHECKING:
    from avparse.harvest.job import HarvestConfig, HarvestResult, _Commit
    from avparse.teachers.clap import AudioInputBuilder, AudioInputs


@dataclass
class WindowJob:
    """Window ``index`` (of ``count``) of a video: ``segments`` one-second segments."""

    job: ClipJob
    index: int = 0
    count: int = 0
    segments: int = 0
    error: str = ""


@dataclass
class WindowInputs:
    """One decoded window, ready for the teachers (or its error)."""

    unit: WindowJob
    frames: np.ndarray | None = None
    """(segments, H, W, 3) uint8: one teacher frame per segment."""
    chunks: AudioInputs | None = None
    """CLAP inputs of the window's one-second chunks."""
    silent: bool = False
    audio_note: str = ""
    blind: bool = False
    error: str = ""


@dataclass
class _Gathered:
    """Per-segment rows of one video, window by window."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    windows: int = 0
    heard: bool = False
    """Some window had sound (a video is silent when none had)."""
    audio_note: str = ""
    blind: bool = False

    def add(self, name: str, rows: np.ndarray) -> None:
        self.parts.setdefault(name, []).append(rows)

    def array(self, name: str) -> np.ndarray:
        return np.concatenate(self.parts[name])


def windows_of(jobs: list[ClipJob]) -> Iterator[WindowJob]:
    """The windows of each video in turn (its duration is probed when its turn comes)."""
    for job in jobs:
        try:
            if job.video is None:
                raise AvparseError("video not found")
            total = job.segments or segment_count(media_duration(job.video, audio_only=True))
        except AvparseError as exc:
            yield WindowJob(job, error=str(exc).removeprefix(f"{job.video}: "))
            continue
        sizes = segment_windows(total)
        for k, n in enumerate(sizes):
            yield WindowJob(job, k, len(sizes), n)


def prepare_window(unit: WindowJob, inputs: AudioInputBuilder, frames: dict) -> WindowInputs:
    """Decode one window and build its CLAP inputs (runs in a worker thread)."""
    prepared = WindowInputs(unit)
    if unit.error:
        prepared.error = unit.error
        return prepared
    video = unit.job.video
    assert video is not None
    try:
        clip = decode_clip(
            video, window=unit.index, segments=unit.segments, audio_only=True, **frames
        )
        if clip.has_video:
            prepared.frames = clip.frames
        else:
            prepared.blind = True
            prepared.frames = black_frames(unit.segments)
        if clip.audio is None:
            prepared.silent = True
            prepared.audio_note = clip.audio_note or "no audio"
            wave = np.zeros(0, np.float32)  # zero-padded to the window's segments below
        else:
            wave = clip.audio
        prepared.chunks = inputs.prepare(list(segment_chunks(wave, unit.segments)))
    except VideoDecodeError as exc:
        prepared.error = str(exc).removeprefix(f"{video}: ")
    except Exception as exc:  # one bad video must not stop the job; the reason is recorded
        prepared.error = f"unexpected {type(exc).__name__}: {first_line(exc)}"
    return prepared


def run_whole(
    todo: list[ClipJob],
    config: HarvestConfig,
    vocab: Vocabulary,
    root: Path,
    thresholds: Thresholds | None,
    result: HarvestResult,
    commit: _Commit,
) -> None:
    """Harvest ``todo`` whole (see the module docstring)."""
    models = HarvestModels(config.sources(), vocab)
    frames = frame_decoding(config.teacher_inputs, TEACHER_SIZE[0])
    inputs = models.inputs
    began = time.perf_counter()
    depth = max(2 * config.batch_size, config.workers)
    gathered: dict[str, _Gathered] = {}
    failed: set[str] = set()
    batch: list[WindowInputs] = []

    def flush() -> None:
        models.load(teachers=True, motion=False)
        commit()
        _run_windows(batch, models, root, thresholds, config, result, gathered)
        batch.clear()

    def work(unit: WindowJob) -> WindowInputs:
        return prepare_window(unit, inputs, frames)

    with ThreadPoolExecutor(max_workers=config.workers) as pool:
        decoded = ahead(pool, windows_of(todo), work, depth)
        bar = progress(decoded, desc="harvest", total=None, unit="window", enabled=config.progress)
        for prepared in bar:
            job = prepared.unit.job
            if job.clip in failed:
                continue
            if prepared.error:
                failed.add(job.clip)
                gathered.pop(job.clip, None)
                result.fail(job, prepared.error)
                continue
            batch.append(prepared)
            if len(batch) == config.batch_size:
                flush()
        if batch:
            flush()
    result.model_seconds = time.perf_counter() - began - models.load_seconds


def _run_windows(
    batch: list[WindowInputs],
    models: HarvestModels,
    root: Path,
    thresholds: Thresholds | None,
    config: HarvestConfig,
    result: HarvestResult,
    gathered: dict[str, _Gathered],
) -> None:
    """Run the teachers on a batch of windows; write each video once its last window is in."""
    from avparse.teachers.clap import AudioInputs

    emb_v = models.visual.embed_frames([p.frames for p in batch if p.frames is not None])
    scores_v = models.visual.scores(emb_v)
    emb_a = models.audio.embed(AudioInputs.concat([p.chunks for p in batch if p.chunks]))
    scores_a = models.audio.scores(emb_a)
    at = 0
    for p in batch:
        rows = slice(at, at + p.unit.segments)
        at += p.unit.segments
        job = p.unit.job
        g = gathered.setdefault(job.clip, _Gathered())
        for name, values in (("emb_v", emb_v), ("emb_a", emb_a), ("v", scores_v), ("a", scores_a)):
            g.add(name, values[rows])
        g.heard |= not p.silent
        g.audio_note = g.audio_note or p.audio_note
        g.blind |= p.blind
        g.windows += 1
        if g.windows == p.unit.count:
            del gathered[job.clip]
            _write_video(job, g, root, thresholds, config, result)


def _write_video(
    job: ClipJob,
    g: _Gathered,
    root: Path,
    thresholds: Thresholds | None,
    config: HarvestConfig,
    result: HarvestResult,
) -> None:
    out = ClipOutputs(root, job.clip)
    silent = not g.heard
    result.mark_inputs(out, job, silent=silent, audio_note=g.audio_note, blind=g.blind)
    scores = {"visual": g.array("v"), "audio": g.array("a")}
    out.write_segments("visual", g.array("emb_v"))
    out.write_segments("audio", g.array("emb_a"))
    for m, values in scores.items():
        out.write_scores(m, values)
    if thresholds is not None:
        label_clip(out, job.weak, scores, thresholds, config.teacher, silent, g.blind)
    result.harvested += 1
    result.segments += len(scores["visual"])
