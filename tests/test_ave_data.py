"""AVE annotation/split readers and the AVE metric, on hand-made and real files."""

from __future__ import annotations

import numpy as np
import pytest

from avparse.data.ave import (
    BACKGROUND,
    AVEAnnotationError,
    AVEAnnotations,
    read_ave_annotations,
    read_ave_split,
    write_ave_split,
)
from avparse.eval.ave import ave_scores, decide_ave, per_class_accuracy, segment_accuracy
from avparse.vocab import AVE


def _write(tmp_path, text: str):
    path = tmp_path / "Annotations.txt"
    path.write_text(text)
    return path


def test_reads_lines_with_and_without_header(tmp_path):
    body = "Church bell&RUhOCu3LNXM&good&0&10\nBark&MH3m4AwEcRY&good&6&8\n"
    for text in (body, "Category&VideoID&Quality&StartTime&EndTime\n" + body):
        clips = read_ave_annotations(_write(tmp_path, text))
        assert clips.ids == ["RUhOCu3LNXM", "MH3m4AwEcRY"]
        assert clips.labels.shape == (2, 28) and clips.labels.sum() == 2
        assert clips.labels[1, AVE.index("Bark")]
        assert clips.segments.shape == (2, 10, 29)
        assert clips.segments.sum(2).tolist() == [[1] * 10] * 2  # one-hot
        expected = [BACKGROUND] * 6 + [AVE.index("Bark")] * 2 + [BACKGROUND] * 2
        assert clips.segment_labels[1].tolist() == expected
        assert (clips.segment_labels[0] == AVE.index("Church bell")).all()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Church bell&RUhOCu3LNXM&good&0", "malformed line"),
        ("Church bells&RUhOCu3LNXM&good&0&10", "unknown category 'Church bells'"),
        ("Church bell&RUhOCu3LNX&good&0&10", "bad video id"),
        ("Church bell&RUhOCu/LNXM&good&0&10", "bad video id"),
        ("Church bell&RUhOCu3LNXM&good&7&3", "StartTime 7 is after EndTime 3"),
        ("Church bell&RUhOCu3LNXM&good&0&11", "EndTime 11 is outside"),
        ("Church bell&RUhOCu3LNXM&good&x&10", "StartTime 'x' is not a whole second"),
    ],
)
def test_errors_name_file_and_line(tmp_path, line, message):
    path = _write(tmp_path, "Bark&MH3m4AwEcRY&good&6&8\n" + line + "\n")
    with pytest.raises(AVEAnnotationError) as info:
        read_ave_annotations(path)
    text = str(info.value)
    assert text.startswith(f"{path}:2: ") and message in text and "\n" not in text


def test_zero_length_event_is_background_quirk(tmp_path):
    clips = read_ave_annotations(_write(tmp_path, "Bark&MH3m4AwEcRY&good&3&3\n"))
    assert (clips.segment_labels == BACKGROUND).all() and clips.labels[0].any()
    assert len(clips.quirks) == 1 and ":1:" in clips.quirks[0]


def test_split_files_round_trip_and_validate(tmp_path):
    path = tmp_path / "test_order.h5"
    write_ave_split(path, np.array([2, 0]))
    assert read_ave_split(path, 3).tolist() == [2, 0]
    with pytest.raises(AVEAnnotationError, match="beyond the 2 annotated clips"):
        read_ave_split(path, 2)
    with pytest.raises(AVEAnnotationError, match="split file not found"):
        read_ave_split(tmp_path / "nope.h5")
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(AVEAnnotationError, match="not a readable HDF5"):
        read_ave_split(tmp_path / "bad.h5")


def test_real_files(ave_root):
    ann = AVEAnnotations(ave_root)
    assert len(ann.clips) == 4143
    sizes = {s: len(ann.split(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 3339, "val": 402, "test": 402}
    assert len(ann.clips.quirks) == 1  # the one StartTime == EndTime row
    ids, labels = ann.clips.id_labels()
    # 45 ids name several rows (one names three); rows, not ids, are clips.
    assert len(ids) == len(set(ann.clips.ids)) == 4097 and (labels.sum(1) >= 1).all()


def test_accuracy_by_hand():
    true = np.array([[0, 0, 28, 28], [5, 5, 5, 28]])
    pred = np.array([[0, 28, 28, 28], [5, 5, 3, 3]])
    # correct: 0, 28, 28 | 5, 5  -> 5 of 8
    assert segment_accuracy(pred, true) == pytest.approx(62.5)
    per = per_class_accuracy(pred, true, 29)
    assert per[0] == pytest.approx(50.0)  # 1 of 2
    assert per[5] == pytest.approx(200 / 3)  # 2 of 3
    assert per[28] == pytest.approx(200 / 3)  # 2 of 3 background segments
    assert np.isnan(per[3])
    scores = ave_scores(pred, true, AVE.names)
    assert scores["accuracy"] == pytest.approx(62.5)
    assert scores["acc/background"] == pytest.approx(200 / 3)
    assert f"acc/{AVE.names[3]}" not in scores


def test_decision_rule():
    c = 3
    frame = np.zeros((1, 4, 2, c))
    video = np.array([[0.2, 0.9, 0.4]])  # clip class 1 (argmax), even below 0.5 for others
    frame[0, :, 0, 1] = [0.9, 0.9, 0.2, 0.9]  # audio
    frame[0, :, 1, 1] = [0.9, 0.4, 0.9, 0.6]  # visual
    frame[0, :, :, 2] = 0.99  # other classes never chosen
    assert decide_ave(frame, video).tolist() == [[1, c, c, 1]]
