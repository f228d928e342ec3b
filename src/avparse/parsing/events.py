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
        start, end: the window's span in seconds of the video; its T segments split it evenly,
            unless ``segment_seconds`` is given.
        frame_prob: (T, 2, C) segment probabilities (modality 0 audio, 1 visual).
        video_prob: (C,) video-level probabilities of the window.
        segment_seconds: segments of this length from ``start`` (one second for a student
            trained on any length), the last one ending at ``end`` at the latest.
    """

    start: float
    end: float
    frame_prob: np.ndarray
    video_prob: np.ndarray
    segment_seconds: float | None = None


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
    has_video: bool = True
    """False for an audio-only file: its visual events are not reported."""
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
            "has_video": self.has_video,
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
    """Apply the decision rule to every window, lay the segments end to end, extract events.

    Windows may hold different numbers of segments (a long video read by a student trained on
    any length: one window of T one-second segments, or several when it is read in windows).
    """
    spans_l, a_l, v_l, p_l, vp_l = [], [], [], [], []
    for w in windows:
        frame = np.asarray(w.frame_prob, dtype=np.float64)
        video_p = np.asarray(w.video_prob, dtype=np.float64)
        t, _, c = frame.shape
        if c != len(classes):
            raise ValueError(f"{c} classes in the probabilities but {len(classes)} names")
        audio_w, visual_w = decide(frame[None], video_p[None])
        if w.segment_seconds is not None:
            onsets = w.start + np.arange(t) * w.segment_seconds
            offsets = np.minimum(onsets + w.segment_seconds, max(w.end, onsets[-1] + 1e-3))
        else:
            step = (w.end - w.start) / t
            onsets = w.start + np.arange(t) * step
            offsets = w.start + np.arange(1, t + 1) * step
        spans_l.append(np.stack([onsets, offsets], axis=1))
        a_l.append(audio_w[0])
        v_l.append(visual_w[0])
        p_l.append(frame)
        vp_l.append(np.repeat(video_p[None], t, axis=0))
    spans = np.concatenate(spans_l)
    a, v, p, vp = (np.concatenate(x) for x in (a_l, v_l, p_l, vp_l))
    n = len(windows)
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
