"""Decode one window of a video file into teacher frames, frames at a rate and 48 kHz mono audio.

Rules (reference section 4; see also ``docs/harvest.md``):

* **Windows.** A file is read in windows of ``seconds`` (10 s): window ``k`` covers
  ``[k * seconds, (k + 1) * seconds)`` of the file. The harvest uses window 0, so a clip longer
  than 10 s is harvested from its first 10 s; parsing long files walks ``window = 0, 1, ...``.
* **Short clips.** A window shorter than ``seconds`` (a 4 s clip, or the tail of a long file) is
  still cut into 10 segments: the 10 segments are 10 equal parts of what the window holds. The
  10 teacher frames are spread over its frames and the 10 audio chunks over its samples, so
  a 4 s clip gives 0.4 s segments. Nothing is padded with invented content.
* **Teacher frames.** From the ``n`` frames of the window, indices ``round(linspace(0, n-1, 10))``
  (:func:`teacher_frame_indices`), converted to RGB (and resized with swscale, bicubic) only for
  those frames; every other frame is decoded but never converted. With ``teacher_fps`` (the
  published harvest: 8) the ``n`` frames are those at that rate (below), as ffmpeg's ``-r 8``
  JPEG frames are, and ``frame_size=None`` keeps them at the video's size for the teacher's
  own resize (:mod:`avparse.teachers.clip`).
* **Frames at a rate** (``fps``, e.g. 8 for ResNet frame features or R(2+1)D snippets): for
  times ``j / fps`` of the window, the frame nearest in time, ``round(seconds * fps)`` frames.
* **Audio.** Channels are averaged (not FFmpeg's louder downmix), resampled with soxr to 48 kHz,
  then trimmed or zero-padded to exactly ``round(window_seconds * 48000)`` samples. Chunk ``i``
  starts at ``round(i * n / 10)`` and is ``n // 10`` samples long (:func:`chunk_bounds`).
* **Damage.** A file that cannot be opened, has no video stream or yields no frame raises
  :class:`VideoDecodeError` (an :class:`AvparseError`) naming the file. A packet that fails to
  decode mid-stream is skipped (the frame count comes from what decoded). A file without an audio
  stream decodes fine: ``audio`` is None and ``audio_note`` says why.
* **Audio-only files** (wav, flac, mp3, m4a, ogg, or a video container without a picture) decode
  with ``audio_only=True``: ``frames`` is None and ``video_note`` says why (the converse of a
  silent video). Without it, a file with no video stream is refused as before.
* **One-second segments** (videos of any length, ``docs/harvest.md``): a video of ``d`` seconds
  has ``T =`` :func:`segment_count` ``(d)`` segments of one second, the last one possibly
  shorter. It is read as consecutive 10 s windows; window ``k`` holds ``min(10, T - 10 k)``
  segments (``segments=`` here). Its teacher frames are the published rule with one frame per
  segment (``round(linspace(0, n - 1, segments))`` of its ``n`` frames at 8 fps), and its audio
  is cut by :func:`segment_chunks` into one-second chunks starting at whole seconds, zero-padded
  at the end of the file. A 10 s window of 10 segments is therefore exactly the 10 s clip rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avparse.errors import AvparseError, first_line, require

AUDIO_RATE = 48_000
"""Sample rate of the audio given to CLAP (the teacher's rate)."""
TEACHER_FRAMES = 10
"""Frames (one per segment) and audio chunks per window."""
WINDOW_SECONDS = 10.0
"""Length of a clip / parsing window in seconds."""
SEGMENT_SECONDS = 1.0
"""Length of one segment of a video of any length."""
SEGMENT_TAIL = 0.1
"""A file's last partial second counts as a segment only when it lasts at least this long: a
container's duration often exceeds the content by some milliseconds (an AAC encoder's priming),
which must not add a segment (a 60.06 s file of a 60 s video has 60 segments)."""
TEACHER_SIZE = (224, 224)
"""(height, width) of teacher frames: VALOR resizes to 224x224 without a centre crop."""


class VideoDecodeError(AvparseError):
    """A video file that cannot be decoded; the message names the file and the reason."""


def teacher_frame_indices(n: int, count: int = TEACHER_FRAMES) -> np.ndarray:
    """``round(linspace(0, n - 1, count))``: the frames the visual teacher sees (repeats if n < count)."""
    if n < 1:
        raise ValueError("a window needs at least one frame")
    return np.round(np.linspace(0, n - 1, count)).astype(np.int64)


def segment_count(duration: float) -> int:
    """``T``: one-second segments of a file of ``duration`` seconds (``ceil``, less a tiny tail)."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    return max(1, math.ceil(duration - SEGMENT_TAIL))


def segment_windows(segments: int, per_window: int = TEACHER_FRAMES) -> list[int]:
    """Segments in each 10 s window of a video of ``segments`` segments: [10, 10, ..., rest]."""
    if segments < 1:
        raise ValueError("a video has at least one segment")
    return [min(per_window, segments - s) for s in range(0, segments, per_window)]


def segment_chunks(audio: np.ndarray, segments: int, rate: int = AUDIO_RATE) -> np.ndarray:
    """(segments, rate) one-second chunks of ``audio``, chunk ``i`` from ``i * rate``; audio
    missing at the end (the file's last partial second) is zero."""
    need = segments * rate
    audio = np.asarray(audio, np.float32)
    if len(audio) < need:
        audio = np.concatenate([audio, np.zeros(need - len(audio), np.float32)])
    return audio[:need].reshape(segments, rate)


def chunk_bounds(n: int, count: int = TEACHER_FRAMES) -> list[tuple[int, int]]:
    """``(start, length)`` of the audio chunks: start ``round(i * n / count)``, length ``n // count``."""
    return [(round(i * n / count), n // count) for i in range(count)]


@dataclass
class DecodedClip:
    """One decoded window of a video file."""

    path: Path
    window: int
    start: float
    """Seconds into the file where the window starts."""
    seconds: float
    """Length of the window in seconds (``WINDOW_SECONDS`` or less at the end of a file)."""
    num_frames: int
    """Frames decoded inside the window."""
    frames: np.ndarray | None = None
    """(10, H, W, 3) uint8 RGB teacher frames, or None when not asked for."""
    frame_indices: np.ndarray | None = None
    """Indices of the teacher frames within the window's frames (at ``teacher_fps`` when given)."""
    rate_frames: np.ndarray | None = None
    """(round(seconds * fps), h, w, 3) uint8 RGB frames at ``fps``, or None."""
    fps: float | None = None
    audio: np.ndarray | None = None
    """(round(seconds * 48000),) float32 mono audio in [-1, 1], or None (see ``audio_note``)."""
    audio_note: str = ""
    """Why ``audio`` is None ("no audio stream", ...); empty when audio is present."""
    video_note: str = ""
    """Why there is no picture ("no video stream"), for an audio-only file; else empty."""
    damaged_packets: int = 0
    """Packets skipped because they failed to decode."""
    notes: list[str] = field(default_factory=list)

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    @property
    def has_video(self) -> bool:
        return not self.video_note

    def audio_chunks(self, count: int = TEACHER_FRAMES) -> np.ndarray | None:
        """(count, n // count) float32 chunks of the audio (reference section 4), or None."""
        if self.audio is None:
            return None
        n = len(self.audio)
        return np.stack([self.audio[s : s + length] for s, length in chunk_bounds(n, count)])


def _reason(exc: BaseException) -> str:
    """One line of an FFmpeg/OS error without the file name (the caller names the file)."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror).strip() if strerror else first_line(exc)


class _RatePicker:
    """Picks, for each target time (ascending), the nearest decoded frame, converting only those."""

    def __init__(self, targets: np.ndarray, size: tuple[int, int] | None) -> None:
        self.targets = np.asarray(targets, np.float64)
        self.size = size
        self.out: list[np.ndarray] = []
        self.prev: tuple[Any, float] | None = None

    def feed(self, frame: Any, t: float) -> None:
        while len(self.out) < len(self.targets) and self.targets[len(self.out)] <= t:
            target = self.targets[len(self.out)]
            if self.prev is not None and abs(self.prev[1] - target) < abs(t - target):
                self.out.append(_rgb(self.prev[0], self.size))
            else:
                self.out.append(_rgb(frame, self.size))
        self.prev = (frame, t)

    def finish(self) -> np.ndarray:
        while len(self.out) < len(self.targets) and self.prev is not None:
            self.out.append(_rgb(self.prev[0], self.size))
        return np.stack(self.out) if self.out else np.zeros((0, 0, 0, 3), np.uint8)


def _rgb(frame: Any, size: tuple[int, int] | None) -> np.ndarray:
    """RGB uint8 array of a frame, resized by swscale (bicubic) when ``size`` = (h, w) is given."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    h, w = size
    return frame.reformat(width=w, height=h, format="rgb24", interpolation="BICUBIC").to_ndarray()


def _duration(container: Any, stream: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _open(path: Path) -> Any:
    av = require("av", "media")
    if not path.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(f"{path}: cannot open as a video ({_reason(exc)})") from None


def decode_clip(
    path: str | Path,
    *,
    window: int = 0,
    seconds: float = WINDOW_SECONDS,
    frame_size: tuple[int, int] | None = TEACHER_SIZE,
    teacher_frames: bool = True,
    audio: bool = True,
    fps: float | None = None,
    fps_size: tuple[int, int] | None = None,
    teacher_fps: float | None = None,
    segments: int | None = None,
    audio_only: bool = False,
) -> DecodedClip:
    """Decode window ``window`` of ``path`` (see the module docstring for the rules).

    Args:
        frame_size: (height, width) of the teacher frames; None keeps the video's size.
        teacher_frames: decode the 10 teacher frames.
        teacher_fps: pick the teacher frames among the window's frames at this rate (the
            published 8 fps) instead of among all its frames.
        audio: decode the audio (48 kHz mono).
        fps: also return frames at this rate (``rate_frames``), resized to ``fps_size``.
        segments: teacher frames of the window (default 10; one per segment of a long video).
        audio_only: decode a file without a video stream as audio alone (``frames`` None).
    """
    path = Path(path)
    if window < 0:
        raise ValueError("window must be >= 0")
    container = _open(path)
    try:
        return _decode(
            container,
            path,
            window,
            seconds,
            frame_size,
            teacher_frames,
            audio,
            fps,
            fps_size,
            teacher_fps,
            segments or TEACHER_FRAMES,
            audio_only,
        )
    except require("av", "media").FFmpegError as exc:  # seeking or probing a damaged file
        raise VideoDecodeError(f"{path}: cannot decode ({_reason(exc)})") from None
    finally:
        container.close()


def frames_at(
    path: str | Path,
    fps: float,
    size: tuple[int, int] | None,
    *,
    window: int = 0,
    seconds: float = WINDOW_SECONDS,
) -> np.ndarray:
    """(round(window_seconds * fps), h, w, 3) uint8 RGB frames of a window at ``fps``.

    For frame features (8 fps ResNet) and R(2+1)D snippets (e.g. ``fps=16, size=(112, 112)``
    gives 16 frames per one-second snippet).
    """
    clip = decode_clip(
        path,
        window=window,
        seconds=seconds,
        teacher_frames=False,
        audio=False,
        fps=fps,
        fps_size=size,
    )
    assert clip.rate_frames is not None
    return clip.rate_frames


def _decode(
    container: Any,
    path: Path,
    window: int,
    seconds: float,
    frame_size: tuple[int, int] | None,
    want_teacher: bool,
    want_audio: bool,
    fps: float | None,
    fps_size: tuple[int, int] | None,
    teacher_fps: float | None = None,
    count: int = TEACHER_FRAMES,
    audio_only: bool = False,
) -> DecodedClip:
    if not container.streams.video:
        if audio_only and want_audio and container.streams.audio:
            return _decode_audio_only(container, path, window, seconds)
        raise VideoDecodeError(f"{path}: no video stream")
    vstream = container.streams.video[0]
    vstream.thread_type = "AUTO"
    duration, start, length = _window_span(container, vstream, path, window, seconds)
    rate = float(vstream.average_rate or vstream.guessed_rate or 25)
    astream = None
    audio_note = ""
    if want_audio:
        if container.streams.audio:
            astream = container.streams.audio[0]
        else:
            audio_note = "no audio stream"
    whole = window == 0 and duration - length < 0.5  # the file's frame count is the window's
    n_guess = vstream.frames if whole and vstream.frames and vstream.frames > 0 else None
    n_guess = n_guess or max(1, round(length * rate))

    scan = _Scan(container, vstream, astream, start, length, rate)
    by_rate = want_teacher and teacher_fps is not None
    picks = teacher_frame_indices(n_guess, count) if want_teacher and not by_rate else None
    rate_picker = (
        _RatePicker(np.arange(max(1, round(length * fps))) / fps, fps_size)
        if fps is not None
        else None
    )
    teacher_picker = None
    if by_rate:
        assert teacher_fps is not None
        rate_picks = teacher_frame_indices(max(1, round(length * teacher_fps)), count)
        teacher_picker = _RatePicker(rate_picks / teacher_fps, frame_size)
    pickers = [p for p in (rate_picker, teacher_picker) if p is not None]
    chosen = scan.run(picks, frame_size, pickers)
    n = scan.count
    if n == 0:
        raise VideoDecodeError(f"{path}: no decodable video frames in window {window}")
    clip = DecodedClip(path, window, start, length, n, damaged_packets=scan.damaged, fps=fps)
    if teacher_picker is not None:
        clip.frames = teacher_picker.finish()
        clip.frame_indices = rate_picks
    elif want_teacher:
        picks = teacher_frame_indices(n, count)
        if any(int(i) not in chosen for i in picks):
            # The container's frame count was wrong (or packets were damaged): decode again
            # with the true count, video only. Rare; the common path is one pass.
            container.seek(_seek_target(start + scan.origin, vstream), stream=vstream)
            rescan = _Scan(container, vstream, None, start, length, rate)
            chosen = rescan.run(picks, frame_size, [])
            if any(int(i) not in chosen for i in picks):
                raise VideoDecodeError(f"{path}: frames changed between two decodes")
        clip.frames = np.stack([chosen[int(i)] for i in picks])
        clip.frame_indices = picks
    if rate_picker is not None:
        clip.rate_frames = rate_picker.finish()
    if scan.truncated:
        clip.notes.append(f"stream ended early ({scan.truncated})")
    if astream is not None:
        if scan.audio_pieces:
            clip.audio = _assemble_audio(scan, start, length)
        else:
            audio_note = "audio stream could not be decoded"
    clip.audio_note = audio_note
    return clip


def _window_span(
    container: Any, stream: Any, path: Path, window: int, seconds: float
) -> tuple[float, float, float]:
    """``(duration, start, length)`` in seconds of window ``window`` (``seconds`` long, the last
    one shorter) of the file, timed by ``stream``; a window at or past the end is an error."""
    duration = _duration(container, stream)
    if duration is None:
        duration = _measure_duration(container, stream)
        container.seek(0)
    start = window * seconds
    if start >= duration - 1e-3:
        raise VideoDecodeError(
            f"{path}: window {window} starts at {start:g} s, after the end ({duration:.2f} s)"
        )
    return duration, start, min(seconds, duration - start)


def _decode_audio_only(container: Any, path: Path, window: int, seconds: float) -> DecodedClip:
    """A window of a file that has sound and no picture (``frames`` None, ``video_note`` set)."""
    astream = container.streams.audio[0]
    _, start, length = _window_span(container, astream, path, window, seconds)
    scan = _Scan(container, None, astream, start, length, 100.0)
    scan.run(None, None, [])
    clip = DecodedClip(path, window, start, length, 0, damaged_packets=scan.damaged)
    clip.video_note = "no video stream"
    if scan.truncated:
        clip.notes.append(f"stream ended early ({scan.truncated})")
    if scan.audio_pieces:
        clip.audio = _assemble_audio(scan, start, length)
    else:
        raise VideoDecodeError(f"{path}: audio stream could not be decoded in window {window}")
    return clip


def media_duration(path: str | Path, *, audio_only: bool = False) -> float:
    """Length of a file in seconds (container, then stream, then last packet); one-line errors.

    The video stream's file unless ``audio_only`` allows a file with sound alone.
    """
    path = Path(path)
    container = _open(path)
    try:
        if container.streams.video:
            stream = container.streams.video[0]
        elif audio_only and container.streams.audio:
            stream = container.streams.audio[0]
        else:
            raise VideoDecodeError(f"{path}: no video stream")
        duration = _duration(container, stream)
        if duration is None:
            duration = _measure_duration(container, stream)
    except require("av", "media").FFmpegError as exc:
        raise VideoDecodeError(f"{path}: cannot decode ({_reason(exc)})") from None
    finally:
        container.close()
    if not duration > 0:
        raise VideoDecodeError(f"{path}: video has no duration (no timed packets)")
    return duration


def _seek_target(start: float, vstream: Any) -> int:
    return int(start / float(vstream.time_base))


def _measure_duration(container: Any, vstream: Any) -> float:
    end = 0.0
    for packet in container.demux(vstream):
        if packet.pts is not None and packet.time_base is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end


class _Scan:
    """One pass over the packets of a window: counts frames, keeps chosen ones, gathers audio."""

    def __init__(
        self, container: Any, vstream: Any, astream: Any, start: float, length: float, rate: float
    ) -> None:
        self.container = container
        self.vstream = vstream
        self.astream = astream
        self.start = start
        self.end = start + length
        self.eps = 0.5 / rate
        self.count = 0
        self.damaged = 0
        self.truncated = ""
        self.audio_pieces: list[tuple[float, np.ndarray]] = []
        self.audio_rate = 0
        self.origin = (container.start_time or 0) / 1_000_000

    def run(
        self,
        picks: np.ndarray | None,
        size: tuple[int, int] | None,
        rate_pickers: list[_RatePicker],
    ) -> dict[int, np.ndarray]:
        av = require("av", "media")
        wanted = set(int(i) for i in picks) if picks is not None else set()
        chosen: dict[int, np.ndarray] = {}
        if self.start > 0:
            seek_stream = self.vstream if self.vstream is not None else self.astream
            target = _seek_target(self.start + self.origin, seek_stream)
            self.container.seek(target, stream=seek_stream)
        resampler = av.AudioResampler(format="fltp") if self.astream is not None else None
        streams = [s for s in (self.vstream, self.astream) if s is not None]
        video_done = self.vstream is None
        audio_done = False
        first_size: tuple[int, int] | None = size
        packets = self.container.demux(*streams)
        while not (video_done and (audio_done or self.astream is None)):
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, ValueError) as exc:
                self.truncated = _reason(exc)
                break
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError):
                self.damaged += 1
                continue
            for frame in frames:
                if frame.time is None:
                    continue
                t = float(frame.time) - self.origin - self.start
                if packet.stream.type == "video":
                    if t < -self.eps:
                        continue
                    if t >= self.end - self.start - 1e-6:
                        video_done = True
                        continue
                    index = self.count
                    self.count += 1
                    if index in wanted:
                        if first_size is None:
                            first_size = (frame.height, frame.width)
                        chosen[index] = _rgb(frame, first_size)
                    for picker in rate_pickers:
                        picker.feed(frame, t)
                else:
                    if t >= self.end - self.start:
                        audio_done = True
                        continue
                    assert resampler is not None
                    for out in resampler.resample(frame):
                        self.audio_rate = out.sample_rate
                        data = out.to_ndarray().astype(np.float32, copy=False)
                        self.audio_pieces.append((t, data.mean(axis=0)))
        return chosen


def _assemble_audio(scan: _Scan, start: float, length: float) -> np.ndarray:
    soxr = require("soxr", "media")
    native = scan.audio_rate
    first = scan.audio_pieces[0][0]
    parts: list[np.ndarray] = []
    filled = 0
    for t, piece in scan.audio_pieces:
        gap = round((t - first) * native) - filled
        if gap > native // 100:  # skipped (damaged) packets: keep later audio in place
            parts.append(np.zeros(gap, np.float32))
            filled += gap
        parts.append(piece)
        filled += len(piece)
    signal = np.concatenate(parts)
    offset = round(first * native)  # window-relative start of the first decoded sample
    if offset > 0:
        signal = np.concatenate([np.zeros(offset, np.float32), signal])
    elif offset < 0:
        signal = signal[-offset:]
    signal = signal[: math.ceil(length * native) + native // 10]
    if native != AUDIO_RATE:
        signal = soxr.resample(signal, native, AUDIO_RATE, quality="HQ").astype(np.float32)
    n = round(length * AUDIO_RATE)
    if len(signal) < n:
        signal = np.concatenate([signal, np.zeros(n - len(signal), np.float32)])
    return np.clip(signal[:n], -1.0, 1.0).astype(np.float32, copy=False)
