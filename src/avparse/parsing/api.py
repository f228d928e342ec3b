"""Parse video files into events: ``avparse.parse(...)`` and the :class:`Parser` behind it.

A trained student (VALOR++ family) or the teachers alone (zero-shot) turn each 10 s window of a
video into segment and video probabilities; :func:`avparse.parsing.events.build_result` applies the
decision rule and stitches the windows into one timeline of :class:`Event` objects.

A student trained on any length (audio input ``clap_segments``, e.g. on UnAV-100) reads the whole
video's one-second segments in one pass when there are at most ``max_segments`` of them, else in
consecutive windows of ``max_segments`` segments (each with its own video probabilities); its
features are computed 10 s by 10 s, so memory stays flat in the video's length. Audio-only files
(wav, flac, mp3, m4a, ogg) parse zero-shot: audio events, visual ones not reported.

Example::

    import avparse

    result = avparse.parse("clip.mp4", model="runs/valorpp")
    for e in result.events:
        print(e.modality, e.label, e.onset, e.offset, round(e.confidence, 2))

    zs = avparse.parse("clip.mp4", classes=["dog barking", "car engine"])  # zero-shot
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avparse.errors import AvparseError, first_line, require
from avparse.features.sampling import SNIPPET_FPS, SNIPPET_SIZE, check_snippet_sampling
from avparse.parsing.events import Event, ParseResult, Window, build_result, window_spans
from avparse.teachers.clap import DEFAULT_CLAP
from avparse.teachers.clip import DEFAULT_CLIP
from avparse.utils.text import count
from avparse.vocab import Vocabulary

__all__ = ["MAX_SEGMENTS", "Event", "ParseResult", "Parser", "parse", "video_duration"]

MAX_SEGMENTS = 1200
"""Segments a student trained on any length reads in one pass (20 minutes of video; attention
over 1200 segments needs some tens of MB); longer videos are read in windows of this many."""
# batches of videos into a folder (skip / continue / report): avparse.parsing.batch.parse_many


def check_max_segments(max_segments: int) -> None:
    """One line when ``--max-segments`` cannot be used (before any model or video is opened)."""
    if not (isinstance(max_segments, int) and max_segments >= 1):
        raise AvparseError(f"--max-segments must be at least 1, got {max_segments}")


def video_duration(path: str | Path, *, audio_only: bool = False) -> float:
    """Length of a video in seconds (container, then stream, then last packet); one-line errors.

    ``audio_only`` also measures a file with sound and no picture (its audio stream).
    """
    av = require("av", "media")
    path = Path(path)
    if not path.is_file():
        raise AvparseError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise AvparseError(f"{path}: empty file (0 bytes), not a video")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.streams.video:
                stream = container.streams.video[0]
            elif audio_only and container.streams.audio:
                stream = container.streams.audio[0]
            elif container.streams.audio:
                raise AvparseError(
                    f"{path}: no video stream: the student reads both pictures and sound; "
                    "parse it with --zero-shot to report its audio events"
                )
            else:
                raise AvparseError(f"{path}: no video stream")
            if container.duration and container.duration > 0:
                return container.duration / 1_000_000
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            end = 0.0
            for packet in container.demux(stream):
                if packet.pts is not None and packet.time_base is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or first_line(exc)  # the path is named already
        raise AvparseError(f"{path}: cannot open as a video ({reason})") from None
    if end <= 0:
        raise AvparseError(f"{path}: video has no duration (no timed packets)")
    return end


class Parser:
    """Loads the models once and parses any number of videos.

    Args:
        model: a student model folder or hub id (VALOR++ family), or a published
            ``checkpoint_best.pt`` (with ``preset``); None for zero-shot.
        preset: the preset a published ``.pt`` was trained with (``valor++``); not for a
            model folder, which brings its own config.
        zero_shot: parse with the teachers alone (needs ``classes`` or ``vocab``).
        classes: zero-shot class names (list or comma-separated string).
        vocab: zero-shot built-in vocabulary (``llp``, ``ave``).
        thresholds: zero-shot thresholds file (``avparse calibrate`` output).
        clip_model, clap_model: teacher checkpoints (hub ids or local folders). For a student
            they must be the ones its features were computed with (VALOR++: the defaults).
        r2plus1d: R(2+1)D-18 weights file; None downloads torchvision's published file.
        device: ``cpu`` or ``cuda``.
        snippet_fps, snippet_size: R(2+1)D-18 sampling (8 fps, 112 px reproduce the published
            features; smaller values only for quick tests).
        teacher_inputs: ``published`` (VALOR's frame sampling, resize and int16 audio, which the
            published checkpoints were trained on) or ``0.1`` (see :mod:`avparse.teachers.clip`).
        precision: ``float32`` or ``bfloat16`` for the teachers and R(2+1)D-18
            (:data:`avparse.teachers.loading.PRECISIONS`).
        max_segments: one-second segments a student trained on any length reads in one pass
            (:data:`MAX_SEGMENTS`); a longer video is read in windows of that many.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        preset: str | None = None,
        zero_shot: bool = False,
        classes: Sequence[str] | str | None = None,
        vocab: str | Vocabulary | None = None,
        thresholds: str | Path | None = None,
        clip_model: str | Path = DEFAULT_CLIP,
        clap_model: str | Path = DEFAULT_CLAP,
        r2plus1d: str | Path | None = None,
        device: str = "cpu",
        snippet_fps: float = SNIPPET_FPS,
        snippet_size: int = SNIPPET_SIZE,
        teacher_inputs: str = "published",
        precision: str = "float32",
        max_segments: int = MAX_SEGMENTS,
    ) -> None:
        from avparse.features.extract import FeatureExtractor, check_extractable, reads_segments

        check_max_segments(max_segments)
        self.max_segments = max_segments
        self.segment_mode = False
        from avparse.teachers.clap import AudioTeacher
        from avparse.teachers.clip import VisualTeacher

        check_snippet_sampling(snippet_fps, snippet_size)
        if model is None and not zero_shot and (classes is not None or vocab is not None):
            zero_shot = True
        if zero_shot and model is not None:
            raise AvparseError("give a model (--model) or parse zero-shot (--zero-shot), not both")
        if not zero_shot and model is None:
            raise AvparseError(
                "nothing to parse with: give a student model (--model DIR, model=) or parse "
                "zero-shot (--zero-shot with --classes or --vocab; classes= or vocab=)"
            )
        self.notes: list[str] = []
        self.device = device
        if zero_shot and preset is not None:
            raise AvparseError("--preset is for a published .pt student (--model), not zero-shot")
        if zero_shot:
            from avparse.parsing.zeroshot import zero_shot_vocabulary

            self.vocab, self.notes = zero_shot_vocabulary(classes, vocab, thresholds)
            self.student = None
            self.mode = "zero-shot"
            self.model_name = f"{clip_model} + {clap_model}"
        else:
            if classes is not None or vocab is not None or thresholds is not None:
                raise AvparseError("--classes, --vocab and --thresholds are for --zero-shot only")
            from avparse.model.checkpoint import load_student

            student, config = load_student(str(model), preset)
            check_extractable(config.feature_kinds, f"{model} (preset {config.name!r})")
            self.student = student.to(device).eval()
            self.config = config
            self.segment_mode = reads_segments(config.feature_kinds)
            self.vocab = config.vocab
            self.mode = "student"
            self.model_name = str(model)
        visual = VisualTeacher(
            clip_model, vocab=self.vocab, device=device, inputs=teacher_inputs, precision=precision
        )
        audio = AudioTeacher(
            clap_model, vocab=self.vocab, device=device, inputs=teacher_inputs, precision=precision
        )
        motion = None
        if self.student is not None:
            from avparse.features.r2plus1d import load_r2plus1d18

            self._check_dims(visual, audio, clip_model, clap_model)
            if "motion" in config.feature_kinds:
                motion = load_r2plus1d18(r2plus1d, device=device)
        self.extractor = FeatureExtractor(
            visual,
            audio,
            motion,
            student=self.student is not None,
            snippet_fps=snippet_fps,
            snippet_size=snippet_size,
            precision=precision,
        )

    def _check_dims(self, visual, audio, clip_model, clap_model) -> None:
        """Teachers whose features do not fit the student fail here, once, not per video."""
        config = self.config
        if visual.dim != config.visual_dim:
            raise AvparseError(
                f"CLIP model {clip_model} gives {visual.dim}-d frame embeddings but the student "
                f"expects {config.visual_dim}; pass the --clip-model its features came from"
            )
        if self.segment_mode:
            if audio.dim != config.audio_dim:
                raise AvparseError(
                    f"CLAP model {clap_model} gives {audio.dim}-d audio embeddings but the "
                    f"student expects {config.audio_dim}; pass the --clap-model its features "
                    "came from"
                )
            return
        probe = audio.token_maps(audio.prepare([np.zeros(48_000, np.float32)]))[0]
        if probe.shape != (config.audio_frames, config.audio_dim):
            raise AvparseError(
                f"CLAP model {clap_model} gives token maps {probe.shape} but the student expects "
                f"{(config.audio_frames, config.audio_dim)}; pass the --clap-model its features "
                "came from"
            )

    def parse(self, video: str | Path) -> ParseResult:
        """Parse one video; raises :class:`AvparseError` naming the file if it cannot be read."""
        video = Path(video)
        duration = video_duration(video, audio_only=self.student is None)
        notes = list(self.notes)
        if self.segment_mode:
            return self._parse_segments(video, notes)
        inputs = []
        for k in range(len(window_spans(duration))):
            try:
                inputs.append(self.extractor.window(video, k))
            except AvparseError as exc:
                if k == 0:
                    raise
                # a damaged or truncated file: keep the windows that decoded, say where it ended
                notes.append(f"parsed up to {10.0 * k:g} s only: window {k} failed ({exc})")
                break
        # the decoder's windows are authoritative (its duration may differ slightly)
        spans = [(w.start, w.start + w.seconds) for w in inputs]
        if self.student is not None:
            frame, vprob = self._student_probs(inputs)
        else:
            frame, vprob = self._zero_shot_probs(inputs)
        silent = [i for i, w in enumerate(inputs) if not w.has_audio]
        if silent:
            reason = inputs[silent[0]].audio_note or "no audio"
            if len(silent) == len(inputs):
                notes.append(f"{reason}: audio events are not reported")
            else:
                notes.append(f"{reason} in {count(len(silent), 'window')}: no audio events there")
            frame[silent, :, 0] = 0.0
        has_audio = not silent
        has_video = all(w.has_video for w in inputs)
        if not has_video:
            notes.append(f"{inputs[0].video_note}: visual events are not reported")
            frame[:, :, 1] = 0.0
        windows = [Window(s, e, frame[i], vprob[i]) for i, (s, e) in enumerate(spans)]
        return build_result(
            str(video),
            duration,  # the file's, as a student of any length reports it (a tail < 0.5 s or
            # windows after a damaged one are not parsed: the segments say what was)
            windows,
            self.vocab.names,
            self.vocab.display_names,
            has_audio=has_audio,
            has_video=has_video,
            mode=self.mode,
            model=self.model_name,
            notes=notes,
        )

    def _parse_segments(self, video: Path, notes: list[str]) -> ParseResult:
        """A student trained on any length: all one-second segments in one pass, or in windows
        of ``max_segments`` when there are more."""
        import torch

        assert self.student is not None
        seg = self.extractor.segments(video)
        total, step = seg.count, self.max_segments
        windows = []
        for a in range(0, total, step):
            b = min(total, a + step)

            def rows(x: np.ndarray | None, a: int = a, b: int = b):
                return None if x is None else torch.from_numpy(x[None, a:b]).to(self.device)

            with torch.inference_mode():
                out = self.student(rows(seg.clap), rows(seg.clip), rows(seg.motion))
            frame = out.frame_prob[0].float().cpu().numpy()
            if not seg.has_audio:
                frame[:, 0] = 0.0
            end = min(float(b), seg.duration)
            windows.append(
                Window(float(a), end, frame, out.video_prob[0].float().cpu().numpy(), 1.0)
            )
        if len(windows) > 1:
            notes.append(
                f"{total} segments read in {len(windows)} windows of {step} (--max-segments)"
            )
        if not seg.has_audio:
            notes.append(f"{seg.audio_note or 'no audio'}: audio events are not reported")
        return build_result(
            str(video),
            seg.duration,
            windows,
            self.vocab.names,
            self.vocab.display_names,
            has_audio=seg.has_audio,
            mode=self.mode,
            model=self.model_name,
            notes=notes,
        )

    def _student_probs(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        import torch

        audio = torch.from_numpy(np.stack([w.clap_map for w in inputs]))
        visual = torch.from_numpy(np.stack([w.clip for w in inputs]))
        motion = None
        if inputs[0].motion is not None:
            motion = torch.from_numpy(np.stack([w.motion for w in inputs])).to(self.device)
        assert self.student is not None
        with torch.inference_mode():
            out = self.student(audio.to(self.device), visual.to(self.device), motion)
        return out.frame_prob.float().cpu().numpy(), out.video_prob.float().cpu().numpy()

    def _zero_shot_probs(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        from avparse.parsing.zeroshot import window_probabilities

        pairs = [window_probabilities(w.clip_logits, w.clap_logits, self.vocab) for w in inputs]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def parse(
    videos: str | Path | Sequence[str | Path],
    model: str | Path | None = None,
    **options,
) -> ParseResult | list[ParseResult]:
    """Parse one video (returns a :class:`ParseResult`) or several (returns a list).

    ``model`` is a student folder or hub id; for zero-shot parsing give ``classes=[...]`` or
    ``vocab="llp"`` instead (plus optional ``thresholds=``, ``clip_model=``, ``clap_model=``).
    Other keywords are those of :class:`Parser`. Errors raise :class:`AvparseError`; for a
    batch that skips finished videos and records failures, see :func:`avparse.parse_many`.
    """
    parser = Parser(model, **options)
    if isinstance(videos, str | Path):
        return parser.parse(videos)
    return [parser.parse(v) for v in videos]
