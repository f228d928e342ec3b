"""Parse results: windows, stitching across window borders, confidences, JSON/TSV writers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avparse.parsing.events import Event, Window, build_result, window_spans
from avparse.parsing.output import TSV_COLUMNS, events_tsv, write_result


def _windows(duration: float, probs, videos) -> list[Window]:
    return [
        Window(start, end, p, v)
        for (start, end), p, v in zip(window_spans(duration), probs, videos, strict=True)
    ]


def test_window_spans() -> None:
    assert window_spans(4.0) == [(0.0, 4.0)]
    assert window_spans(10.0) == [(0.0, 10.0)]
    assert window_spans(25.0) == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    assert window_spans(30.0) == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
    assert window_spans(10.3) == [(0.0, 10.0)]  # a 0.3 s tail is not parsed
    assert window_spans(0.3) == [(0.0, 0.3)]  # but a whole short clip is
    with pytest.raises(ValueError):
        window_spans(0.0)


def test_short_clip_segments_scale_with_duration() -> None:
    frame = np.zeros((10, 2, 2))
    frame[2:5, 0, 1] = 0.9  # audio class 1 on segments 2..4
    res = build_result("a/b.mp4", 4.0, _windows(4.0, [frame], [np.array([0, 0.8])]), ["x", "y"])
    assert res.events == [Event("audio", "y", 0.8, 2.0, pytest.approx(0.72))]
    assert res.segments.shape == (10, 2) and res.segments[-1, 1] == pytest.approx(4.0)
    assert res.stem == "b"


def test_events_stitched_across_window_borders() -> None:
    probs = [np.full((10, 2, 1), 0.1) for _ in range(3)]
    probs[0][8:, 1, 0] = 0.8  # visual 8-10 s
    probs[1][:3, 1, 0] = 0.6  # visual 10-13 s: touches the first -> one event 8-13
    probs[1][9, 0, 0] = 0.7  # audio 19-20 s
    probs[2][:2, 0, 0] = 0.9  # audio 20-21 s of the 5 s tail window (0.5 s segments)
    video = [np.array([0.9]), np.array([0.5]), np.array([1.0])]
    res = build_result("v.mp4", 25.0, _windows(25.0, probs, video), ["dog"])
    assert res.segments.shape == (30, 2) and res.windows == 3
    assert np.allclose(res.segments[:20, 0], np.arange(20))
    assert np.allclose(res.segments[20:, 0], 20 + 0.5 * np.arange(10))
    got = {(e.modality, e.onset, e.offset) for e in res.events}
    assert got == {("visual", 8.0, 13.0), ("audio", 19.0, 21.0)}
    visual = res.events_of("visual")[0]
    assert visual.confidence == pytest.approx((0.8 * 0.9 * 2 + 0.6 * 0.5 * 3) / 5)
    # a window whose video probability is below 0.5 contributes no events
    video[0] = np.array([0.4])
    res = build_result("v.mp4", 25.0, _windows(25.0, probs, video), ["dog"])
    assert {(e.modality, e.onset, e.offset) for e in res.events} == {
        ("visual", 10.0, 13.0),
        ("audio", 19.0, 21.0),
    }


def test_audio_visual_events_and_writers(tmp_path) -> None:
    frame = np.zeros((10, 2, 2))
    frame[0:6, 0, 0] = 0.8
    frame[3:9, 1, 0] = 0.6
    res = build_result(
        "clip.mp4", 10.0, _windows(10.0, [frame], [np.array([1.0, 0.0])]), ["a\tb", "c"]
    )
    av = res.events_of("audio-visual")
    assert [(e.onset, e.offset) for e in av] == [(3.0, 6.0)]
    assert av[0].confidence == pytest.approx(0.6)
    assert [e.modality for e in res.events] == ["audio", "visual", "audio-visual"]
    paths = write_result(res, tmp_path)
    data = json.loads(paths[0].read_text())
    assert data["events"][0] == {
        "modality": "audio",
        "label": "a\tb",
        "onset": 0.0,
        "offset": 6.0,
        "confidence": 0.8,
    }
    lines = paths[1].read_text().splitlines()
    assert lines[0].split("\t") == list(TSV_COLUMNS)
    assert lines[1].split("\t") == ["audio", "a b", "0.000", "6.000", "0.8000"]
    assert len(lines) == 4
    assert events_tsv(res) == paths[1].read_text()


def test_parse_outputs_and_cli_module_import_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, avparse.cli.parse, avparse.parsing.events, avparse.parsing.output, "
        "avparse.parsing.html, avparse.parsing.plot, avparse.parsing.zeroshot; "
        "heavy = [m for m in ('torch', 'transformers', 'av', 'matplotlib') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
