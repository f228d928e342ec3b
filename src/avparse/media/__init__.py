"""Decoding video files (PyAV + soxr): teacher frames, frames at a rate, 48 kHz mono audio chunks.

Public API (see :mod:`avparse.media.decode`)::

    from avparse.media import decode_clip, frames_at, DecodedClip

    clip = decode_clip(path)              # first 10 s window: 10 teacher frames + audio
    clip.frames                           # (10, 224, 224, 3) uint8 RGB
    clip.audio_chunks()                   # (10, n // 10) float32, 48 kHz mono, or None
    frames_at(path, fps=8, size=(112, 112), window=k)   # (round(8 * seconds), 112, 112, 3)
"""

from avparse.media.decode import (
    AUDIO_RATE,
    TEACHER_FRAMES,
    WINDOW_SECONDS,
    DecodedClip,
    VideoDecodeError,
    chunk_bounds,
    decode_clip,
    frames_at,
    teacher_frame_indices,
)

__all__ = [
    "AUDIO_RATE",
    "TEACHER_FRAMES",
    "WINDOW_SECONDS",
    "DecodedClip",
    "VideoDecodeError",
    "chunk_bounds",
    "decode_clip",
    "frames_at",
    "teacher_frame_indices",
]
