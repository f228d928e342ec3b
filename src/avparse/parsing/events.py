"""Typed parse results: events with times and confidences, built from windowed probabilities.

A video is parsed in windows of ten segments (one 10 s window for an ordinary clip). Each window
goes through the one decision rule, :func:`avparse.eval.events.decide`; the windows' segments are
then laid end to end on one timeline, so a run of positive segments that touches a window border
becomes one event. Windows are the decoder's (``avparse.media``): 10 s each, the last one ending
with the video. Numpy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avparse.data.llp import runs
from avparse.eval.events import decide

MODALITIES = ("audio", "visual", "audio-visual")
"""Event modalities, in output order: heard, seen, heard and seen."""


@dataclass(frozen=True)
class Event:
    """One event: ``label`` is ``modality`` from ``onset`` to ``offset`` seconds.

    ``confidence`` is the mean over the event's segments of the segment probability times the
    video probability of the segment's window (for audio-visual events the smaller of the audio and
    visual segment probabilities), so it lies in [0.25, 1] for an event the rule accepted.
    """

    modality: str
    label: str
    onset: float
    offset: float
    confidence: float

    @property
    def duration(self) -> float:
        return self.offset - self.onset


@dataclass(frozen=True)
class Window:
    """Model output for one window of a video.

    Attributes:
        start, end: the window's span in seconds of the video; its T segments split it evenly.
        frame_prob: (T, 2, C) segment probabilities (modality 0 audio, 1 visual).
        video_prob: (C,) video-level probabilities of the window.
    """

    start: float
    end: float
    frame_prob: np.ndarray
    video_prob: np.ndarray


@dataclass
class ParseResult:
    """Everything known about one parsed video.

    ``segments`` (S, 2) are the timeline's segment spans in seconds; ``audio``/``visual`` (S, C)
    the decisions; ``frame_prob`` (S, 2, C) and ``video_prob`` (S, C) the probabilities behind
    them (the video probability of each segment's window).
    """

    video: str
    duration: float
    classes: list[str]
    display: list[str]
    events: list[Event]
    segments: np.ndarray
    audio: np.ndarray
    visual: np.ndarray
    frame_prob: np.ndarray
    video_prob: np.ndarray
    has_audio: bool = True
    mode: str = "student"
    model: str = ""
    windows: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return Path(self.video).stem

    def events_of(self, modality: str) -> list[Event]:
        return [e for e in self.events if e.modality == modality]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (events, segments and settings; probabilities rounded)."""
        return {
            "video": self.video,
            "duration": round(self.duration, 3),
            "mode": self.mode,
            "model": self.model,
            "has_audio": self.has_audio,
            "windows": self.windows,
            "classes": self.classes,
            "display": self.display,
            "segments": np.round(self.segments, 3).tolist(),
            "events": [
                {**asdict(e), "onset": round(e.onset, 3), "offset": round(e.offset, 3)}
                | {"confidence": round(e.confidence, 4)}
                for e in self.events
            ],
            "notes": self.notes,
        }


def window_spans(
    duration: float, *, length: float = 10.0, min_tail: float = 0.5
) -> list[tuple[float, float]]:
    """The ``(start, end)`` analysis windows of a video, following the decoder's windows.

    Window ``k`` covers ``[k * length, (k + 1) * length)`` (``avparse.media.decode_clip(...,
    window=k)``); the last one ends with the video, so a 25 s video has windows 0-10, 10-20 and
    20-25 s, and a 4 s clip one window of 4 s. Each window is cut into 10 equal segments (the
    decoder's short-clip rule). A tail shorter than ``min_tail`` seconds (a 10.2 s clip's last
    0.2 s) is not parsed: ten 0.02 s segments carry no usable evidence.
    """
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    spans: list[tuple[float, float]] = []
    start = 0.0
    while start < duration - 1e-6:
        end = min(start + length, duration)
        if spans and end - start < min_tail:
            break
        spans.append((start, end))
        start += length
    return spans


def build_result(
    video: str,
    duration: float,
    windows: list[Window],
    classes: list[str],
    display: list[str] | None = None,
    **info: Any,
) -> ParseResult:
    """Apply the decision rule to every window, lay the segments end to end, extract events."""
    frame = np.stack([np.asarray(w.frame_prob, dtype=np.float64) for w in windows])
    video_p = np.stack([np.asarray(w.video_prob, dtype=np.float64) for w in windows])
    n, t, _, c = frame.shape
    if c != len(classes):
        raise ValueError(f"{c} classes in the probabilities but {len(classes)} names")
    audio_w, visual_w = decide(frame, video_p)
    step = np.array([(w.end - w.start) / t for w in windows])
    starts = np.array([w.start for w in windows])
    onsets = (starts[:, None] + np.arange(t)[None, :] * step[:, None]).reshape(-1)
    offsets = (starts[:, None] + np.arange(1, t + 1)[None, :] * step[:, None]).reshape(-1)
    spans = np.stack([onsets, offsets], axis=1)
    a, v = audio_w.reshape(n * t, c), visual_w.reshape(n * t, c)
    p = frame.reshape(n * t, 2, c)
    vp = np.repeat(video_p, t, axis=0)
    events = timeline_events(spans, a, v, p, vp, classes)
    return ParseResult(
        video=video,
        duration=float(duration),
        classes=list(classes),
        display=list(display or classes),
        events=events,
        segments=spans,
        audio=a,
        visual=v,
        frame_prob=p,
        video_prob=vp,
        windows=n,
        **info,
    )


def timeline_events(
    spans: np.ndarray,
    audio: np.ndarray,
    visual: np.ndarray,
    frame_prob: np.ndarray,
    video_prob: np.ndarray,
    classes: list[str],
) -> list[Event]:
    """Events of a timeline: maximal runs per modality and class, sorted by onset."""
    per_modality = {
        "audio": (audio, frame_prob[:, 0]),
        "visual": (visual, frame_prob[:, 1]),
        "audio-visual": (audio & visual, np.minimum(frame_prob[:, 0], frame_prob[:, 1])),
    }
    events: list[Event] = []
    for modality, (matrix, prob) in per_modality.items():
        score = prob * video_prob
        for _, cls, on, off in runs(matrix[None]).tolist():
            events.append(
                Event(
                    modality,
                    classes[cls],
                    float(spans[on, 0]),
                    float(spans[off - 1, 1]),
                    float(score[on:off, cls].mean()),
                )
            )
    order = {m: i for i, m in enumerate(MODALITIES)}
    events.sort(key=lambda e: (e.onset, order[e.modality], e.label))
    return events
