"""Decoding clips ahead of the models, in worker threads.

Each worker decodes one clip (PyAV) and builds CLAP's mel inputs with the thread-safe
:class:`avparse.teachers.clap.AudioInputBuilder`, so the main thread only runs models. A clip that
fails to decode comes back with its reason; one bad clip never stops the batch.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from avparse.errors import first_line
from avparse.harvest.plan import ClipJob
from avparse.media.decode import (
    TEACHER_FRAMES,
    TEACHER_SIZE,
    VideoDecodeError,
    chunk_bounds,
    decode_clip,
)
from avparse.teachers.clap import AudioInputBuilder, AudioInputs

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DecodeSettings:
    """How the clips are decoded (the teachers' frames and the R(2+1)D-18 snippets)."""

    frames: dict
    """Keyword arguments of :func:`decode_clip` for the teacher frames."""
    snippet_fps: float
    snippet_size: int


@dataclass
class Prepared:
    """One decoded clip, ready for the models (or its decoding error)."""

    job: ClipJob
    frames: np.ndarray | None = None
    """(10, H, W, 3) uint8 teacher frames."""
    chunks: AudioInputs | None = None
    """CLAP inputs of the 10 one-second chunks."""
    whole: AudioInputs | None = None
    """CLAP input of the whole window (for the token map)."""
    silent: bool = False
    audio_note: str = ""
    blind: bool = False
    """An audio-only file: ``frames`` are black (the teacher's input for "nothing seen")."""
    rate_frames: np.ndarray | None = None
    """Frames at the snippet rate for R(2+1)D-18."""
    error: str = ""


def black_frames(count: int) -> np.ndarray:
    """(count, 224, 224, 3) black frames: what an audio-only file is seen as (as silence is
    what a video without sound is heard as)."""
    return np.zeros((count, *TEACHER_SIZE, 3), np.uint8)


def prepare(job: ClipJob, inputs: AudioInputBuilder, settings: DecodeSettings) -> Prepared:
    """Decode one clip and build its CLAP inputs (runs in a worker thread).

    A clip without audio is heard as silence: CLAP's inputs are built from zeros of the
    window's length. With ``job.motion`` the frames at the snippet rate are decoded too.
    """
    prepared = Prepared(job)
    if job.video is None:
        prepared.error = "video not found"
        return prepared
    try:
        size = int(settings.snippet_size)
        clip = decode_clip(
            job.video,
            teacher_frames=job.teachers,
            audio=job.teachers,
            fps=settings.snippet_fps if job.motion else None,
            fps_size=(size, size) if job.motion else None,
            audio_only=True,
            **settings.frames,
        )
        if job.motion:
            if not clip.has_video:
                raise VideoDecodeError(f"{job.video}: no video stream, so no R(2+1)D-18 features")
            if clip.rate_frames is None or len(clip.rate_frames) == 0:
                raise VideoDecodeError(f"{job.video}: no frames decoded for R(2+1)D-18 snippets")
            prepared.rate_frames = clip.rate_frames
        if job.teachers:
            prepared.frames = clip.frames
            if not clip.has_video:
                prepared.blind = True
                prepared.frames = black_frames(TEACHER_FRAMES)
            wave = clip.audio
            if wave is None:
                from avparse.features.extract import silence

                prepared.silent = True
                prepared.audio_note = clip.audio_note or "no audio"
                wave = silence(clip.seconds)
            prepared.chunks = inputs.prepare([wave[s : s + n] for s, n in chunk_bounds(len(wave))])
            prepared.whole = inputs.prepare([wave])
    except VideoDecodeError as exc:
        prepared.error = str(exc).removeprefix(f"{job.video}: ")
    except Exception as exc:  # one bad clip must not stop a batch job; the reason is recorded
        prepared.error = f"unexpected {type(exc).__name__}: {first_line(exc)}"
    return prepared


def ahead(
    pool: ThreadPoolExecutor, items: Iterable[T], work: Callable[[T], R], depth: int
) -> Iterator[R]:
    """``work(item)`` of each item, in order, run in ``pool`` with up to ``depth`` items in
    flight (decoding ahead of the models at flat memory)."""
    queue: collections.deque[Future[R]] = collections.deque()
    it = iter(items)
    for item in it:
        queue.append(pool.submit(work, item))
        if len(queue) >= depth:
            break
    while queue:
        yield queue.popleft().result()
        following = next(it, None)
        if following is not None:
            queue.append(pool.submit(work, following))
