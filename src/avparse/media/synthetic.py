"""Write small synthetic video files with PyAV (tests, benchmarks, smoke runs).

A moving colour gradient (so frames differ) and, optionally, a sine tone whose loudness changes
each second (so audio chunks differ), encoded as H.264 + AAC in an mp4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avparse.errors import require


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
            n = round(seconds * sample_rate)
            times = np.arange(n) / sample_rate
            loud = 0.1 + 0.08 * (np.floor(times) % 5)
            wave = (loud * np.sin(2 * np.pi * tone_hz * times)).astype(np.float32)
            data = np.tile(wave, (channels, 1))
            step = 1024
            for s in range(0, n, step):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data[:, s : s + step]),
                    format="fltp",
                    layout=audio.layout.name,
                )
                frame.sample_rate = sample_rate
                frame.pts = s
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    return path
