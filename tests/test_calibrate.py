"""Threshold calibration: exact F-maximising search, thresholds file, CLI on saved logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avparse.data.layout import SCORE_FOLDERS
from avparse.teachers.calibrate import best_threshold, calibrate, class_f
from avparse.vocab import LLP, load_thresholds


def brute_force(scores, truth, inside) -> float:
    values = np.unique(scores[inside])
    cands = np.concatenate([[values[0] - 1], (values[1:] + values[:-1]) / 2, [values[-1] + 1]])
    return max(class_f(scores, truth, inside, t) for t in cands)


@pytest.mark.parametrize("seed", range(6))
def test_search_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 200
    truth = rng.random(n) < 0.3
    scores = np.round(rng.normal(truth * 2.0, 1.0), 1)  # rounded: ties happen
    inside = rng.random(n) < 0.7
    result = best_threshold(scores, truth, inside, current=None)
    assert result.f_after == pytest.approx(brute_force(scores, truth, inside))
    assert class_f(scores, truth, inside, result.threshold) == pytest.approx(result.f_after)
    assert result.positives == truth.sum()


def test_class_without_positives_keeps_its_threshold():
    scores = np.array([1.0, 2.0, 3.0])
    none = np.zeros(3, bool)
    assert best_threshold(scores, none, ~none, current=7.0).threshold == 7.0
    # no current threshold: one above the highest logit, so it is never predicted
    assert best_threshold(scores, none, ~none, current=None).threshold > 3.0


def test_calibrate_shapes_and_improvement():
    rng = np.random.default_rng(0)
    dense = rng.random((30, 10, 3)) < 0.2
    weak = dense.any(1) | (rng.random((30, 3)) < 0.2)
    scores = rng.normal(dense * 3.0 + 10, 1.0)
    rows = calibrate(scores, weak, dense, [0.0, 10.0, None])
    assert len(rows) == 3
    for r in rows:
        assert r.f_before is None or r.f_after >= r.f_before - 1e-12
    assert 9 < rows[0].threshold < 14


@pytest.fixture
def harvested(tmp_path) -> tuple[Path, Path]:
    """An LLP-like annotation folder (val) and a harvest root with saved logits."""
    ann, root = tmp_path / "ann", tmp_path / "root"
    ann.mkdir()
    ids = [f"clip{i:07d}" for i in range(12)]
    rng = np.random.default_rng(1)
    weak_rows, audio_rows, visual_rows = [], [], []
    for i, clip in enumerate(ids):
        weak_rows.append(f"{clip}_0_10\tSpeech,Dog")
        audio_rows.append(f"{clip}_0_10\t{i % 5}\t{i % 5 + 4}\tSpeech")
        visual_rows.append(f"{clip}_0_10\t{i % 3}\t{i % 3 + 5}\tDog")
        dense_a = np.zeros((10, len(LLP)), bool)
        dense_a[i % 5 : i % 5 + 4, 0] = True
        dense_v = np.zeros((10, len(LLP)), bool)
        dense_v[i % 3 : i % 3 + 5, 3] = True
        for m, dense, offset in (("audio", dense_a, 0.0), ("visual", dense_v, 15.0)):
            path = root / SCORE_FOLDERS[m] / f"{clip}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, (offset + 4 * dense + rng.normal(0, 1, dense.shape)).astype(np.float32))
    (ann / "AVVP_val_pd.csv").write_text("filename\tevent_labels\n" + "\n".join(weak_rows) + "\n")
    head = "filename\tonset\toffset\tevent_labels\n"
    (ann / "AVVP_eval_audio.csv").write_text(head + "\n".join(audio_rows) + "\n")
    (ann / "AVVP_eval_visual.csv").write_text(head + "\n".join(visual_rows) + "\n")
    return ann, root


def test_cli_writes_a_thresholds_file_the_vocabulary_reads(cli, harvested, tmp_path):
    ann, root = harvested
    out = tmp_path / "thresholds.json"
    result = cli("calibrate", "--harvest", root, "--annotations", ann, "--out", out)
    assert result.code == 0, result.err
    assert "calibrated on 12 val clips" in result.out
    data = json.loads(out.read_text())
    assert set(data["visual"]) == set(LLP.names)
    vocab = load_thresholds(out, LLP)
    speech_audio = vocab.thresholds("audio")[0]
    dog_visual = vocab.thresholds("visual")[3]
    assert 0 < speech_audio < 4 and 15 < dog_visual < 19
    stats = data["calibration"]["segment_f"]["audio"]["Speech"]
    assert stats["after"] >= stats["before"] and stats["positives"] == 48
    # classes without true segments keep the published thresholds
    assert data["visual"]["Car"] == LLP.thresholds("visual")[1]


def test_cli_without_logits_is_one_line(cli, harvested, tmp_path):
    ann, _ = harvested
    (tmp_path / "empty").mkdir()
    result = cli(
        "calibrate", "--harvest", tmp_path / "empty", "--annotations", ann, "--out", tmp_path / "t"
    )
    assert result.code == 2
    assert "no CLIP/segment_scores/<id>.npy for any of the 12 val" in result.err


def test_thin_classes_keep_their_threshold_or_take_the_pooled_one():
    """A class seen in fewer than ``min_clips`` clips gets no threshold of its own: fitted to
    a few clips it follows their noise (synthetic AVE: val 94, train 85)."""
    rng = np.random.default_rng(3)
    n = 60
    dense = np.zeros((n, 10, 3), bool)
    dense[:, 2:7, 0] = True  # class 0 in every clip
    dense[:4, 3:6, 1] = True  # class 1 in four clips
    dense[:4, 1:4, 2] = True  # class 2 in four clips
    weak = dense.any(1)
    weak[4:8] = True  # tagged but absent in some clips
    scores = rng.normal(dense * 4.0, 1.0)
    scores[:4, :, 1] += 50.0  # a threshold fitted to class 1's four clips would sit near 52
    rows = calibrate(scores, weak, dense, [None, None, 7.5], min_clips=5)
    assert [r.source for r in rows] == ["class", "pooled", "kept"]
    assert [r.clips for r in rows] == [60, 4, 4]
    inside = np.broadcast_to(weak[:, None, :], dense.shape)
    pooled = best_threshold(scores, dense, inside, None).threshold
    assert rows[1].threshold == pooled and rows[2].threshold == 7.5
    assert rows[1].f_after == pytest.approx(
        class_f(scores[..., 1], dense[..., 1], inside[..., 1], pooled)
    )
    own = best_threshold(scores[..., 1], dense[..., 1], inside[..., 1], None).threshold
    assert own > 40 > pooled  # what the class alone would have fitted
    # min_clips=1: every class with a true segment fits its own, as before.
    assert [r.source for r in calibrate(scores, weak, dense, [None] * 3, min_clips=1)] == [
        "class"
    ] * 3
    with pytest.raises(ValueError, match="min_clips"):
        calibrate(scores, weak, dense, [None] * 3, min_clips=0)


def test_cli_min_clips_and_thin_class_report(cli, harvested, tmp_path):
    ann, root = harvested
    out = tmp_path / "t.json"
    result = cli(
        "calibrate", "--harvest", root, "--annotations", ann, "--out", out, "--min-clips", "13"
    )
    assert result.code == 0, result.err
    data = json.loads(out.read_text())
    speech = data["calibration"]["segment_f"]["audio"]["Speech"]
    assert speech["source"] == "kept" and speech["clips"] == 12
    assert data["audio"]["Speech"] == LLP.thresholds("audio")[0]  # the published one, kept
    assert "kept" in result.out and "fewer than 13 clips" in result.out
    bad = cli(
        "calibrate", "--harvest", root, "--annotations", ann, "--out", out, "--min-clips", "0"
    )
    assert bad.code == 2 and "--min-clips" in bad.err
    one = cli(
        "calibrate", "--harvest", root, "--annotations", ann, "--out", out, "--min-clips", "1"
    )
    assert one.code == 0 and "fewer than 1 clips" not in one.out  # issue 20 item 15


def test_cli_missing_harvest_root_says_not_found(cli, harvested, tmp_path):
    ann, _ = harvested
    result = cli(
        "calibrate", "--harvest", tmp_path / "nonexist", "--annotations", ann,
        "--out", tmp_path / "t.json",
    )  # fmt: skip
    assert result.code == 2
    assert "not found" in result.err and "harvest it first" not in result.err
    assert result.err.count("\n") <= 1


def test_soft_labels_of_far_negative_margins_are_zero_without_warnings():
    import warnings

    from avparse.teachers.rule import elaborate

    scores = np.array([[[-200.0, 300.0]]], np.float32)  # (1 clip, 1 segment, 2 classes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hard, soft = elaborate(scores, np.array([0.0, 0.0]), np.array([[True, True]]))
    assert hard.tolist() == [[[0.0, 1.0]]] and soft.tolist() == [[[0.0, 1.0]]]


def test_cli_out_folder_is_refused_before_the_work(cli, harvested, tmp_path):
    ann, root = harvested
    result = cli("calibrate", "--harvest", root, "--annotations", ann, "--out", tmp_path)
    assert result.code == 2 and "is a folder" in result.err and result.out == ""
