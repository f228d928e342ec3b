"""Decoding video files (PyAV + soxr): teacher frames, frames at a rate, 48 kHz mono audio chunks.

Public API (see :mod:`avparse.media.decode`)::

    from avparse.media import decode_clip, frames_at, DecodedClip

    clip = decode_clip(path)              # first 10 s window: 10 teacher frames + audio
    clip.frames                           # (10, 224, 224, 3) uint8 RGB
    clip.audio_chunks()                   # (10, n // 10) float32, 48 kHz mono, or None
    frames_at(path, fps=8, size=(112, 112), window=k)   # (round(8 * seconds), 112, 112, 3)
    segment_count(media_duration(path))   # T one-second segments of a video of any length
    decode_clip(path, window=k, segments=s, audio_only=True)  # window k of a long file, s frames
"""

from avparse.media.decode import (
    AUDIO_RATE,
    SEGMENT_SECONDS,
    TEACHER_FRAMES,
    WINDOW_SECONDS,
    DecodedClip,
    VideoDecodeError,
    chunk_bounds,
    decode_clip,
    frames_at,
    media_duration,
    segment_chunks,
    segment_count,
    segment_windows,
    teacher_frame_indices,
)

__all__ = [
    "AUDIO_RATE",
    "SEGMENT_SECONDS",
    "TEACHER_FRAMES",
    "WINDOW_SECONDS",
    "DecodedClip",
    "VideoDecodeError",
    "chunk_bounds",
    "decode_clip",
    "frames_at",
    "media_duration",
    "segment_chunks",
    "segment_count",
    "segment_windows",
    "teacher_frame_indices",
]
