"""Raw video -> the student's inputs for the VALOR++ family, one 10 s window at a time.

The VALOR++ student reads three features per window (reference section 3):

* ``clap`` (64, 768): the CLAP HTS-AT (fused) final-layer token map of the window's audio,
* ``clip`` (10, 768): CLIP ViT-L/14 image embeddings of the 10 teacher frames,
* ``r2plus1d_18`` (10, 512): R(2+1)D-18 snippet features, 8 frames per second at 112x112.

A student trained on any length (UnAV-100) reads one row per one-second segment of the whole
video instead: ``clap_segments`` (T, 512) CLAP embeddings of one-second chunks and
``clip_segments`` (T, 768) CLIP embeddings of one frame per segment, the very rows
``avparse harvest --span full`` writes (:meth:`FeatureExtractor.segments`), and R(2+1)D-18
snippets at one per segment where it has a 3-D input.

The teachers (:mod:`avparse.teachers`) and the decoder (:mod:`avparse.media`) do the model and
decoding work; this module only wires them. VGGish and ResNet-152 features (the ``han``,
``valor`` and ``valor+`` presets) cannot be computed here: :data:`EXTRACTABLE` lists what can.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avparse.data.layout import CLAP_MAP_GRID, SEGMENTS
from avparse.errors import AvparseError
from avparse.features.sampling import SNIPPET_FPS, SNIPPET_SIZE

EXTRACTABLE = {
    "audio": ("clap", "clap_segments"),
    "visual": ("clip", "clip_segments"),
    "motion": ("r2plus1d_18",),
}
"""Feature kinds that :class:`FeatureExtractor` computes from raw video, per input role."""


def reads_segments(kinds: dict[str, str]) -> bool:
    """True for a student whose audio is one CLAP embedding per segment (any length): it parses
    a video's segments all at once (:meth:`FeatureExtractor.segments`), not 10 s windows."""
    return kinds.get("audio") == "clap_segments"


def check_extractable(kinds: dict[str, str], model: str) -> None:
    """Refuse (in one line) a student whose inputs cannot be computed from video."""
    missing = [k for role, k in kinds.items() if k not in EXTRACTABLE[role]]
    if missing:
        raise AvparseError(
            f"model {model} reads {'/'.join(missing)} features, which avparse cannot compute from "
            "video (only CLAP/CLIP/R(2+1)D-18: the valor++ family, and CLAP/CLIP segment "
            "embeddings); use `avparse evaluate` on "
            "precomputed features instead"
        )


@dataclass
class WindowInputs:
    """What one decoded window yields for the student and for zero-shot parsing."""

    start: float
    seconds: float
    has_audio: bool
    audio_note: str
    clip: np.ndarray | None
    """(10, D_clip) CLIP image embeddings; None for an audio-only file (zero-shot only)."""
    clip_logits: np.ndarray | None
    """(10, C) CLIP image-text logits for the teacher's vocabulary; None without a picture."""
    clap_logits: np.ndarray | None = None
    """(10, C) CLAP audio-text logits per chunk (zero-shot only), None without audio."""
    clap_map: np.ndarray | None = None
    """(tokens, D_clap) CLAP token map (student only)."""
    motion: np.ndarray | None = None
    """(10, 512) R(2+1)D-18 snippet features (student only)."""
    video_note: str = ""
    """Why there is no picture ("no video stream": an audio-only file), else empty."""

    @property
    def has_video(self) -> bool:
        return not self.video_note


class FeatureExtractor:
    """Decodes windows of a video and runs the teachers (and R(2+1)D-18) on them.

    Args:
        visual: an :class:`avparse.teachers.clip.VisualTeacher`.
        audio: an :class:`avparse.teachers.clap.AudioTeacher`.
        motion: an :class:`avparse.features.r2plus1d.R2Plus1D18`, or None when the 3D features
            are not needed (zero-shot parsing, a student without a 3-D input).
        student: compute the student's inputs (token maps, motion) rather than chunk logits.
        snippet_fps, snippet_size: R(2+1)D-18 sampling; the defaults (8 fps, 112 px) reproduce
            the published features, smaller values are for quick tests.
        precision: R(2+1)D-18's arithmetic (:data:`avparse.teachers.loading.PRECISIONS`).
    """

    def __init__(
        self,
        visual: Any,
        audio: Any,
        motion: Any = None,
        *,
        student: bool = True,
        snippet_fps: float = SNIPPET_FPS,
        snippet_size: int = SNIPPET_SIZE,
        precision: str = "float32",
    ) -> None:
        self.visual = visual
        self.audio = audio
        self.motion = motion
        self.student = student
        self.snippet_fps = snippet_fps
        self.snippet_size = snippet_size
        self.precision = precision

    def window(self, path: str | Path, window: int) -> WindowInputs:
        """Decode window ``window`` (10 s, the last one shorter) and compute its inputs."""
        from avparse.media import decode_clip

        clip = decode_clip(
            path,
            window=window,
            **self.visual.decoding(),
            fps=self.snippet_fps if self.motion is not None else None,
            fps_size=(self.snippet_size, self.snippet_size) if self.motion is not None else None,
            audio_only=not self.student,  # zero-shot hears audio-only files; a student needs both
        )
        if clip.frames is None:  # an audio-only file (zero-shot): nothing is seen
            emb = logits = None
        else:
            emb = self.visual.embed_frames(clip.frames)
            logits = self.visual.scores(emb)
        out = WindowInputs(
            start=clip.start,
            seconds=clip.seconds,
            has_audio=clip.has_audio,
            audio_note=clip.audio_note,
            clip=emb,
            clip_logits=logits,
            video_note=clip.video_note,
        )
        if self.student:
            # A video without sound is heard as silence: the student still needs an audio input.
            wave = clip.audio if clip.audio is not None else silence(clip.seconds)
            token_map = self.audio.token_maps(self.audio.prepare([wave]))[0]
            out.clap_map = fit_token_map(token_map, clip.seconds)
            if self.motion is not None:
                out.motion = self._motion(clip.rate_frames)
        elif clip.audio is not None:
            chunks = clip.audio_chunks()
            assert chunks is not None
            out.clap_logits = self.audio.scores(self.audio.embed(self.audio.prepare(list(chunks))))
        return out

    def segments(self, path: str | Path, count: int | None = None) -> SegmentInputs:
        """Per-segment inputs of the whole video (``count`` segments, default from its duration),
        computed 10 s window by 10 s window, so memory does not grow with the video's length
        beyond the (T, D) rows themselves. Needs a student (audio-only files are refused)."""
        from avparse.media import (
            decode_clip,
            media_duration,
            segment_chunks,
            segment_count,
            segment_windows,
        )

        duration = media_duration(path)
        total = count or segment_count(duration)
        out = SegmentInputs(duration=duration, count=total)
        parts: dict[str, list[np.ndarray]] = {"clip": [], "clap": [], "motion": []}
        for k, n in enumerate(segment_windows(total)):
            clip = decode_clip(
                path,
                window=k,
                segments=n,
                **self.visual.decoding(),
                fps=self.snippet_fps if self.motion is not None else None,
                fps_size=(self.snippet_size, self.snippet_size),
            )
            assert clip.frames is not None
            parts["clip"].append(self.visual.embed_frames(clip.frames))
            if clip.audio is None:
                out.silent_windows += 1
                out.audio_note = out.audio_note or clip.audio_note
            wave = clip.audio if clip.audio is not None else np.zeros(0, np.float32)
            chunks = list(segment_chunks(wave, n))
            parts["clap"].append(self.audio.embed(self.audio.prepare(chunks)))
            if self.motion is not None:
                parts["motion"].append(self._motion(clip.rate_frames, segments=n))
            out.windows += 1
        out.clip = np.concatenate(parts["clip"])
        out.clap = np.concatenate(parts["clap"])
        out.motion = np.concatenate(parts["motion"]) if parts["motion"] else None
        return out

    def _motion(self, frames: np.ndarray | None, segments: int = SEGMENTS) -> np.ndarray:
        if frames is None or len(frames) == 0:
            raise AvparseError("no frames decoded for the R(2+1)D-18 snippets")
        return motion_features(
            self.motion,
            [frames],
            size=self.snippet_size,
            precision=self.precision,
            segments=segments,
        )[0]


@dataclass
class SegmentInputs:
    """Per-segment inputs of a whole video (:meth:`FeatureExtractor.segments`)."""

    duration: float
    count: int
    """T: one-second segments."""
    clip: np.ndarray | None = None
    """(T, D_clip) CLIP embeddings, one frame per segment (``clip_segments``)."""
    clap: np.ndarray | None = None
    """(T, D_clap) CLAP embeddings of the one-second chunks (``clap_segments``)."""
    motion: np.ndarray | None = None
    """(T, 512) R(2+1)D-18 snippet features, one snippet per segment, or None."""
    windows: int = 0
    silent_windows: int = 0
    audio_note: str = ""

    @property
    def has_audio(self) -> bool:
        return self.silent_windows < self.windows


def motion_features(
    model: Any,
    clips: list[np.ndarray],
    *,
    size: int = SNIPPET_SIZE,
    batch_snippets: int = 80,
    precision: str = "float32",
    segments: int = SEGMENTS,
) -> list[np.ndarray]:
    """(10, 512) R(2+1)D-18 snippet features of each clip's frames, in batched model calls.

    Each item of ``clips`` is (N, H, W, 3) uint8 frames at :data:`SNIPPET_FPS` (``rate_frames``
    of :func:`avparse.media.decode_clip` with ``fps=SNIPPET_FPS``); its snippets are made by
    :func:`avparse.features.r2plus1d.snippets`, so ``avparse parse`` and ``avparse harvest``
    sample them identically. Snippets of several clips share model calls of up to
    ``batch_snippets`` snippets; ``precision`` as in :data:`avparse.teachers.loading.PRECISIONS`
    (``bfloat16``: a float32 ``model``'s weights are cast to bfloat16 in place, once; the
    snippets follow and the features come back as float32).
    """
    import torch

    from avparse.features.r2plus1d import snippets

    if not clips:
        return []
    parts = [
        snippets(torch.from_numpy(np.ascontiguousarray(f)), size=size, segments=segments)
        for f in clips
    ]
    lengths = {p.shape[2] for p in parts}
    from avparse.teachers.loading import cast_modules

    weight = next(model.parameters())
    device, dtype = weight.device, weight.dtype
    if precision != "float32" and dtype == torch.float32:
        dtype = cast_modules((model,), precision)
    feats = []
    with torch.inference_mode():
        if len(lengths) == 1:  # one stacked tensor, cut into calls of batch_snippets snippets
            x = torch.cat(parts)
            for s in range(0, len(x), batch_snippets):
                batch = x[s : s + batch_snippets].to(device, dtype)
                feats.append(model.features(batch).float().cpu())
        else:  # snippets of different lengths (clips shorter than 10 s) cannot share a call
            feats = [model.features(p.to(device, dtype)).float().cpu() for p in parts]
    out = torch.cat(feats).numpy()
    counts = np.cumsum([0] + [len(p) for p in parts])
    return [out[a:b] for a, b in itertools.pairwise(counts)]


def fit_token_map(
    token_map: np.ndarray,
    seconds: float,
    *,
    full: float = 10.0,
    grid: tuple[int, int] | None = None,
) -> np.ndarray:
    """Align a short window's CLAP token map with its segments.

    CLAP's extractor repeats audio shorter than 10 s until it fills 10 s, so the time axis of the
    token map (the 32 columns of the (2, 32) grid, in time order) covers the window's audio
    several times over. For a window of ``seconds`` < 10 the first ``seconds / 10`` of the time
    axis is kept and stretched back to the full width (linear interpolation), so the student's
    audio step ``t`` and visual step ``t`` describe the same tenth of the window. Maps of full
    windows are returned unchanged.
    """
    if seconds >= full - 1e-6:
        return token_map
    if grid is None:
        grid = CLAP_MAP_GRID
    rows, cols = grid
    tokens, width = token_map.shape
    if tokens != rows * cols:
        raise ValueError(f"token map {token_map.shape} is not a {rows}x{cols} grid")
    m = token_map.reshape(rows, cols, width)
    keep = cols * max(seconds, 1e-3) / full
    x = np.clip((np.arange(cols) + 0.5) * keep / cols - 0.5, 0, cols - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, cols - 1)
    w = (x - lo)[None, :, None]
    fitted = (1 - w) * m[:, lo] + w * m[:, hi]
    return fitted.reshape(tokens, width).astype(token_map.dtype, copy=False)


def silence(seconds: float) -> np.ndarray:
    """48 kHz zeros for ``seconds``: what a video without sound is heard as."""
    from avparse.media import AUDIO_RATE

    return np.zeros(max(1, round(seconds * AUDIO_RATE)), np.float32)
