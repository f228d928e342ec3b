"""Thresholds against a plain per-class loop, and ``avparse teacher label`` on a tiny LLP-like
root: label filtering, soft labels, the thresholds file, the report, and bad input."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avparse.data.layout import (
    EVENT_FEATURE_FOLDERS,
    HARVEST_FOLDERS,
    SCORE_FOLDERS,
    SEGMENT_FOLDERS,
    SOFT_HARVEST_FOLDERS,
    TEMPORAL_HARVEST,
    TEMPORAL_THRESHOLDS,
)
from avparse.errors import AvparseError
from avparse.temporal.checkpoint import save_teacher
from avparse.temporal.config import TeacherConfig
from avparse.temporal.data import load_split
from avparse.temporal.label import label_root, report
from avparse.temporal.network import TemporalTeacher
from avparse.temporal.text import cache_path
from avparse.temporal.thresholds import best_threshold, masked_logits, soft_labels
from avparse.vocab import LLP

SMALL = {"audio_dim": 12, "visual_dim": 10, "hidden_dim": 16, "nhead": 2, "ff_dim": 24,
         "num_layers": 1, "dropout": 0.0, "audio_text_dim": 6, "visual_text_dim": 8,
         "clip_text": "tiny/clip", "clap_text": "tiny/clap", "vocabulary": "llp"}  # fmt: skip


def _plain_best(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Try -inf and every midpoint of consecutive distinct finite logits; the first best F."""
    if y.sum() == 0:
        return float("-inf"), 0.0
    values = np.unique(z[np.isfinite(z)])
    candidates = [float("-inf")] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    best = (float("-inf"), -1.0)
    for t in candidates:
        pred = z > t
        tp = np.sum(pred & y)
        f = 2 * tp / (pred.sum() + y.sum())
        if f > best[1]:
            best = (t, f)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholds_match_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 12, size=20)
    weak = rng.random((20, 4)) < 0.5
    logits = rng.normal(size=(int(lengths.sum()), 4)).round(1)  # rounding makes ties
    z = masked_logits(logits, weak, lengths)
    rows = np.repeat(np.arange(20), lengths)
    y = (rng.random(z.shape) < 0.3) & weak[rows]
    y[:, 3] = False  # a class that never occurs: -inf
    for c in range(4):
        t, f = best_threshold(z[:, c], y[:, c])
        pt, pf = _plain_best(z[:, c], y[:, c])
        assert t == pt and f == pytest.approx(pf)
    assert best_threshold(z[:, 3], y[:, 3])[0] == float("-inf")


def test_soft_labels_filter_and_replace_minus_inf() -> None:
    logits = np.array([[1.0, -2.0], [3.0, 0.5]])
    weak = np.array([[True, True], [True, False]])
    soft = soft_labels(logits, np.array([1.0, float("-inf")]), weak)
    assert soft[0, 0] == pytest.approx(0.5)
    assert soft[1, 0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    # -inf: the smallest logit of the class minus 1 -> margin of -2.0 is 1
    assert soft[0, 1] == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert soft[1, 1] == 0.0  # outside the weak labels


def _segments(root: Path, ids: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for m, dim in (("audio", 12), ("visual", 10)):
        folder = root / SEGMENT_FOLDERS[m]
        folder.mkdir(parents=True, exist_ok=True)
        for clip in ids:
            np.save(folder / f"{clip}.npy", rng.normal(size=(10, dim)).astype(np.float32))


def _text_cache(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for m, source, dim in (("audio", "tiny/clap", 6), ("visual", "tiny/clip", 8)):
        path = cache_path(root, m, source, LLP)
        path.parent.mkdir(parents=True, exist_ok=True)
        e = rng.normal(size=(len(LLP), dim)).astype(np.float32)
        np.save(path, e / np.linalg.norm(e, axis=1, keepdims=True))


@pytest.fixture(scope="module")
def llp_root(tmp_path_factory) -> Path:
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path_factory.mktemp("tl") / "root", n_train=8, n_val=6, n_test=6)
    ids = [i for s in ("train", "val", "test") for i in load_split(root, s, segments=False).ids]
    _segments(root, ids)
    _text_cache(root)
    return root


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    cfg = TeacherConfig(**SMALL)  # type: ignore[arg-type]
    return save_teacher(TemporalTeacher(cfg), cfg, tmp_path_factory.mktemp("t") / "teacher")


def test_label_writes_a_filtered_harvest(llp_root: Path, teacher: Path) -> None:
    manifest = label_root(teacher, llp_root, overwrite=True)
    out = llp_root / TEMPORAL_HARVEST
    saved = json.loads((llp_root / TEMPORAL_THRESHOLDS).read_text())
    assert saved["classes"] == list(LLP.names) and "val" in saved["source"]
    assert set(manifest["label_scores"]) == {"val", "test"}
    val = load_split(llp_root, "val", dims={"audio": 12, "visual": 10})
    for m, dense in (("audio", val.dense_audio), ("visual", val.dense_visual)):
        z = np.concatenate([np.load(out / SCORE_FOLDERS[m] / f"{c}.npy") for c in val.ids])
        zm = masked_logits(z, val.weak, val.lengths)
        theta = [float("-inf") if t is None else t for t in saved[m]]
        for c in range(len(LLP)):
            assert theta[c] == _plain_best(zm[:, c], dense.values[:, c])[0]
    for split in ("train", "val", "test"):
        d = load_split(llp_root, split, segments=False)
        for i, clip in enumerate(d.ids):
            for m in ("audio", "visual"):
                hard = np.load(out / HARVEST_FOLDERS[m] / f"{clip}.npy")
                soft = np.load(out / SOFT_HARVEST_FOLDERS[m] / f"{clip}.npy")
                assert hard.shape == soft.shape == (10, len(LLP))
                assert not hard[:, ~d.weak[i]].any()  # label filtering
                assert not soft[:, ~d.weak[i]].any()
                assert ((soft >= 0) & (soft <= 1)).all()
                assert ((soft > 0.5) == hard.astype(bool)).all()
    with pytest.raises(AvparseError, match="--overwrite"):
        label_root(teacher, llp_root)
    scores = report(llp_root, "test")
    assert set(scores) == {"frame", "temporal"}
    assert scores["temporal"] == pytest.approx(manifest["label_scores"]["test"])


def test_label_bad_input(llp_root: Path, teacher: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(llp_root, root, symlinks=True)
    shutil.rmtree(root / TEMPORAL_HARVEST, ignore_errors=True)
    (root / "AVVP_eval_audio.csv").rename(tmp_path / "dense.csv")
    with pytest.raises(AvparseError, match=r"needs dense labels of the val split.*FILE.*NUMBER"):
        label_root(teacher, root)
    label_root(teacher, root, thresholds="0.5")  # a given threshold works without dense labels
    given = json.loads((root / TEMPORAL_THRESHOLDS).read_text())
    assert given["audio"] == [0.5] * len(LLP) and given["source"].startswith("given")
    label_root(teacher, root, thresholds=str(llp_root / TEMPORAL_THRESHOLDS), overwrite=True)
    with pytest.raises(AvparseError, match="expected val, val-pooled"):
        label_root(teacher, root, thresholds="nope", overwrite=True)
    shutil.rmtree(root / SEGMENT_FOLDERS["visual"])
    with pytest.raises(
        AvparseError, match=r"feats_CLIP/segment_feats: folder not found.*avparse harvest"
    ):
        label_root(teacher, root, thresholds="0", overwrite=True)
    wide = TeacherConfig(**{**SMALL, "audio_dim": 13})  # type: ignore[arg-type]
    save_teacher(TemporalTeacher(wide), wide, tmp_path / "wide")
    with pytest.raises(AvparseError, match=r"shape \(10, 12\), expected \(T, 13\)"):
        label_root(tmp_path / "wide", llp_root, overwrite=True)
    other = TeacherConfig(**{**SMALL, "audio_text_dim": 7})  # type: ignore[arg-type]
    save_teacher(TemporalTeacher(other), other, tmp_path / "other")
    with pytest.raises(AvparseError, match="6-d but the teacher's audio text space is 7-d"):
        label_root(tmp_path / "other", llp_root, overwrite=True)
    assert (EVENT_FEATURE_FOLDERS["audio"]).startswith("feats_CLAP")


def test_uwav_presets_expect_the_temporal_harvest() -> None:
    from avparse.train.recipe import TrainConfig, recipe

    assert recipe("uwav").harvest == recipe("uwav++").harvest == "temporal"
    assert recipe("valor").harvest == "frame"
    with pytest.raises(AvparseError, match="harvest must be frame or temporal"):
        TrainConfig(harvest="fused")


def test_label_an_ave_root_one_clip_per_id(teacher: Path, tmp_path: Path) -> None:
    from avparse.data.ave import AVEAnnotations
    from avparse.synthetic import generate_ave
    from avparse.vocab import AVE

    root = generate_ave(tmp_path / "ave", n_train=12, n_val=8, n_test=8)
    ids = sorted({c for s in ("train", "val", "test") for c in AVEAnnotations(root).split(s).ids})
    _segments(root, ids)
    rng = np.random.default_rng(0)
    for m, source, dim in (("audio", "tiny/clap", 6), ("visual", "tiny/clip", 8)):
        path = cache_path(root, m, source, AVE)
        path.parent.mkdir(parents=True, exist_ok=True)
        e = rng.normal(size=(len(AVE), dim)).astype(np.float32)
        np.save(path, e / np.linalg.norm(e, axis=1, keepdims=True))
    manifest = label_root(teacher, root)
    assert manifest["vocabulary"] == "ave" and set(manifest["label_scores"]) == {
        "train", "val", "test"}  # fmt: skip
    for split in ("train", "val", "test"):
        clips = AVEAnnotations(root).split(split)
        union_ids, union = clips.id_labels()
        for clip, weak in zip(union_ids, union, strict=True):
            hard = np.load(root / TEMPORAL_HARVEST / HARVEST_FOLDERS["audio"] / f"{clip}.npy")
            assert hard.shape == (10, len(AVE)) and not hard[:, ~weak].any()


def test_bfloat16_labelling_stays_close_to_float32(llp_root: Path, teacher: Path) -> None:
    from avparse.temporal.checkpoint import load_teacher
    from avparse.temporal.infer import split_logits

    model, _ = load_teacher(teacher)
    d = load_split(llp_root, "val", dims={"audio": 12, "visual": 10})
    rng = np.random.default_rng(0)
    text = {
        m: rng.normal(size=(len(LLP), k)).astype(np.float32)
        for m, k in (("audio", 6), ("visual", 8))
    }
    full = split_logits(model, d.audio, d.visual, text)
    half = split_logits(model, d.audio, d.visual, text, precision="bfloat16")
    assert half[0].values.dtype == np.float32
    np.testing.assert_allclose(half[0].values, full[0].values, atol=0.1, rtol=0.05)
    with pytest.raises(AvparseError, match="unknown precision"):
        label_root(teacher, llp_root, overwrite=True, precision="float16")
