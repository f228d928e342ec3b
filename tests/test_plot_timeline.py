"""Timeline PNG: written, sized by the classes shown, with a truth overlay from dense files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avparse.errors import AvparseError
from avparse.parsing.events import Event, Window, build_result
from avparse.parsing.plot import plot_timeline, truth_events
from avparse.vocab import LLP, Vocabulary


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_truth_events_from_dense_files(tmp_path: Path) -> None:
    audio = tmp_path / "a.tsv"
    visual = tmp_path / "v.tsv"
    header = "filename\tonset\toffset\tevent_labels\n"
    audio.write_text(header + "BjCEufrlXm4_20_30\t0\t6\tSpeech,Dog\nother_clip_00\t0\t10\tCar\n")
    visual.write_text(header + "BjCEufrlXm4_20_30\t4\t10\tDog\n")
    events = truth_events("BjCEufrlXm4", LLP, audio, visual)
    assert set(events) == {
        Event("audio", "Speech", 0.0, 6.0, 1.0),
        Event("audio", "Dog", 0.0, 6.0, 1.0),
        Event("visual", "Dog", 4.0, 10.0, 1.0),
        Event("audio-visual", "Dog", 4.0, 6.0, 1.0),
    }
    bad = tmp_path / "bad.tsv"
    bad.write_text(header + "x\t0\t1\tNot_a_class\n")
    with pytest.raises(AvparseError, match=r"bad\.tsv:2"):
        truth_events("x", LLP, bad)


def test_plot_writes_png_with_truth(tmp_path: Path) -> None:
    vocab = Vocabulary.from_names(["dog $x$ barking", "car", "bird"])
    frame = np.zeros((10, 2, 3))
    frame[1:4, 0, 0] = 0.9
    frame[5:8, 1, 1] = 0.7
    res = build_result("v.mp4", 10.0, [Window(0, 10, frame, np.ones(3))], vocab.names)
    few = plot_timeline(res, tmp_path / "few.png")
    truth = [Event("visual", "bird", 2.0, 5.0, 1.0)]
    more = plot_timeline(res, tmp_path / "more.png", truth=truth)
    w1, h1 = _png_size(few)
    w2, h2 = _png_size(more)
    assert w1 == w2 == 1000 and h2 > h1  # the truth-only class adds a row
    empty = build_result(
        "e.mp4", 4.0, [Window(0, 4, np.zeros((10, 2, 3)), np.zeros(3))], vocab.names
    )
    assert _png_size(plot_timeline(empty, tmp_path / "empty.png"))[0] == 1000
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_names_in_scripts_the_default_font_lacks_draw_without_warnings(
    tmp_path: Path, monkeypatch
) -> None:
    """0.1: a CJK file name printed one matplotlib `Glyph ... missing` warning per character."""
    import warnings

    from matplotlib import font_manager

    from avparse.parsing import plot

    vocab = Vocabulary.from_names(["狗叫", "car"])
    frame = np.zeros((10, 2, 2))
    frame[1:4, 0, 0] = 0.9
    res = build_result("视频 テスト🎵.mp4", 10.0, [Window(0, 10, frame, np.ones(2))], vocab.names)
    # no installed font has these glyphs: they are left out of the picture
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any library warning fails the test
        assert _png_size(plot_timeline(res, tmp_path / "cjk.png"))[0] == 1000
    texts, font = plot._drawable(["视频 x.mp4"])
    assert texts == [" x.mp4"] and font is None
    # a font with the glyphs, when one is installed, is used instead
    default = font_manager.findfont(font_manager.FontProperties())
    monkeypatch.setattr(plot, "_charmap", lambda p: set(range(0x30000)) if p == "cjk" else {120})
    monkeypatch.setattr(
        font_manager.fontManager, "ttflist", [font_manager.FontEntry(fname=default),
                                              font_manager.FontEntry(fname="cjk")]
    )  # fmt: skip
    assert plot._drawable(["视频 x"]) == (["视频 x"], "cjk")
