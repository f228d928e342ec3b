"""Write small synthetic video and audio files with PyAV (tests, benchmarks, smoke runs).

A moving colour gradient (so frames differ) and, optionally, a sine tone whose loudness changes
each second (so audio chunks differ), encoded as H.264 + AAC in an mp4; or the tone alone in an
audio file (:func:`write_test_audio`: wav, flac, mp3, m4a, ogg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avparse.errors import require

AUDIO_CODECS = {
    ".wav": ("pcm_s16le", "s16"),
    ".flac": ("flac", "s16"),
    ".mp3": ("libmp3lame", "fltp"),
    ".m4a": ("aac", "fltp"),
    ".ogg": ("libopus", "flt"),
}
"""Codec and sample format of each audio file type :func:`write_test_audio` writes."""


def _tone(seconds: float, sample_rate: int, tone_hz: float) -> np.ndarray:
    n = round(seconds * sample_rate)
    times = np.arange(n) / sample_rate
    loud = 0.1 + 0.08 * (np.floor(times) % 5)
    return (loud * np.sin(2 * np.pi * tone_hz * times)).astype(np.float32)


def _encode_wave(
    av: Any, out: Any, stream: Any, wave: np.ndarray, fmt: str, sample_rate: int, size: int
) -> None:
    """Encode ``wave`` (channels, samples) in [-1, 1] into the audio ``stream`` of the open
    container ``out`` as ``fmt`` samples (s16, flt or a planar format), ``size`` samples a
    frame, then flush the encoder."""
    layout = stream.layout.name
    for s in range(0, wave.shape[1], size):
        part = wave[:, s : s + size]
        if fmt == "s16":
            data = (part * 32767).astype(np.int16).T.reshape(1, -1)
        elif fmt == "flt":
            data = np.ascontiguousarray(part.T.reshape(1, -1))
        else:
            data = np.ascontiguousarray(part)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = s
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def write_test_audio(
    path: str | Path,
    *,
    seconds: float = 10.0,
    tone_hz: float = 440.0,
    sample_rate: int = 48_000,
    channels: int = 1,
) -> Path:
    """Encode the tone of :func:`write_test_video` alone in an audio file, by its suffix
    (:data:`AUDIO_CODECS`)."""
    av = require("av", "media")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_CODECS:
        raise ValueError(f"{path}: audio file type must be one of {', '.join(AUDIO_CODECS)}")
    codec, fmt = AUDIO_CODECS[suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = "stereo" if channels == 2 else "mono"
    wave = np.tile(_tone(seconds, sample_rate, tone_hz), (channels, 1))
    with av.open(str(path), "w", format="ipod" if suffix == ".m4a" else None) as out:
        stream = out.add_stream(codec, rate=sample_rate)
        stream.layout = layout
        stream.format = fmt
        size = stream.codec_context.frame_size or 1024
        _encode_wave(av, out, stream, wave, fmt, sample_rate, size)
    return path


def write_test_video(
    path: str | Path,
    *,
    seconds: float = 10.0,
    size: tuple[int, int] = (64, 64),
    fps: int = 25,
    tone_hz: float | None = 440.0,
    sample_rate: int = 44_100,
    channels: int = 2,
) -> Path:
    """Encode an mp4 of ``seconds`` at ``size`` (height, width); ``tone_hz=None`` gives no audio."""
    av = require("av", "media")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"preset": "ultrafast", "g": str(fps)}
        audio = None
        if tone_hz is not None:
            audio = out.add_stream("aac", rate=sample_rate)
            audio.layout = "stereo" if channels == 2 else "mono"
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(round(seconds * fps)):
            t = i / fps
            img = np.stack(
                [
                    (xx * 4 + i * 3) % 256,
                    (yy * 4 + i * 5) % 256,
                    np.full_like(xx, int(25 * t) % 256),
                ],
                axis=-1,
            ).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None and tone_hz is not None:
            wave = np.tile(_tone(seconds, sample_rate, tone_hz), (channels, 1))
            _encode_wave(av, out, audio, wave, "fltp", sample_rate, 1024)
    return path
