"""Typed parse results: events with times and confidences, built from windowed probabilities.

A video is parsed in windows of ten segments (one 10 s window for an ordinary clip). Each window
goes through the one decision rule, :func:`avparse.eval.events.decide`; the windows' segments are
then laid end to end on one timeline, so a run of positive segments that touches a window border
becomes one event. Numpy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avparse.eval.events import decide, runs

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
        start, end: the window's span in seconds of the video.
        frame_prob: (T, 2, C) segment probabilities (modality 0 audio, 1 visual).
        video_prob: (C,) video-level probabilities of the window.
        keep_from: the first segment that belongs to this window on the timeline (segments
            before it overlap the previous window and are dropped); its onset is moved back to
            ``clip_start`` so the timeline has no gap.
        clip_start: onset of the first kept segment (the previous window's end).
    """

    start: float
    end: float
    frame_prob: np.ndarray
    video_prob: np.ndarray
    keep_from: int = 0
    clip_start: float | None = None


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


def window_spans(duration: float, *, length: float = 10.0, tolerance: float = 0.5) -> list[Window]:
    """Cut a video into analysis windows (probabilities left empty).

    A video up to ``length + tolerance`` seconds is one window spanning all of it (its ten
    segments are duration / 10 long). A longer one gets windows of exactly ``length`` seconds
    starting every ``length`` seconds; the last window is the final ``length`` seconds of the
    video, so every segment is one second, and its segments already covered by the previous
    window are dropped.
    """
    if duration <= length + tolerance:
        return [Window(0.0, duration, np.empty(0), np.empty(0))]
    spans: list[Window] = []
    start = 0.0
    while start + length <= duration + 1e-6:
        spans.append(Window(start, start + length, np.empty(0), np.empty(0)))
        start += length
    covered = spans[-1].end
    if duration - covered > 1e-6:
        last = duration - length
        seg = length / 10
        # first segment whose midpoint lies after the covered part
        keep = int(np.ceil((covered - last) / seg - 0.5 - 1e-9))
        keep = min(max(keep, 0), 9)
        spans.append(
            Window(last, duration, np.empty(0), np.empty(0), keep_from=keep, clip_start=covered)
        )
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
    seg_spans, audio, visual, probs, vprobs = [], [], [], [], []
    for i, w in enumerate(windows):
        step = (w.end - w.start) / t
        for s in range(w.keep_from, t):
            onset = w.start + s * step
            if s == w.keep_from and w.clip_start is not None:
                onset = w.clip_start
            seg_spans.append((onset, w.start + (s + 1) * step))
        audio.append(audio_w[i, w.keep_from :])
        visual.append(visual_w[i, w.keep_from :])
        probs.append(frame[i, w.keep_from :])
        vprobs.append(np.broadcast_to(video_p[i], (t - w.keep_from, c)))
    spans = np.asarray(seg_spans, dtype=np.float64).reshape(-1, 2)
    a, v = np.concatenate(audio), np.concatenate(visual)
    p, vp = np.concatenate(probs), np.concatenate(vprobs)
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
