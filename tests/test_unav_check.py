"""``avparse data check`` of a UnAV-100 root: a small sound root, then broken copies of it."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, UNAV_FEATURE_RATE, task_kinds
from avparse.data.unav_check import check_unav_root
from avparse.vocab import UNAV

VIDEOS = {  # id: (subset, duration, [(label_id, start, end)])
    "-aaaaaaaaaa": ("train", 12.5, [(0, 0.5, 3.2), (12, 5.0, 12.5)]),
    "bbbbbbbbbbb": ("train", 10, [(3, 0, 10)]),
    "ccccccccccc": ("validation", 20.2, [(99, 1, 2)]),
    "ddddddddddd": ("test", 15, [(50, 14.5, 15)]),
}


def _rows(kind: str, duration: float) -> int:
    fk = FEATURE_KINDS[kind]
    return int(duration * UNAV_FEATURE_RATE) - 2 if fk.rate else math.ceil(duration)


def _make_root(root: Path) -> Path:
    db = {
        vid: {
            "duration": d,
            "subset": subset,
            "annotations": [
                {"segment": [s, e], "label": UNAV.names[c], "label_id": c} for c, s, e in events
            ],
        }
        for vid, (subset, d, events) in VIDEOS.items()
    }
    root.mkdir()
    (root / "unav100_annotations.json").write_text(json.dumps({"version": "x", "database": db}))
    rng = np.random.default_rng(0)
    for kind, fk in task_kinds("unav").items():
        (root / fk.folder).mkdir(parents=True)
        for vid, (_, d, _) in VIDEOS.items():
            x = rng.standard_normal((_rows(kind, d), fk.dim)).astype(np.float32)
            np.save(root / fk.folder / fk.file_name(vid), x)
    harvest = root / HARVEST_FOLDERS["audio"]
    harvest.mkdir(parents=True)
    for vid, (subset, d, events) in VIDEOS.items():
        if subset == "train":
            h = np.zeros((math.ceil(d), len(UNAV)), np.uint8)
            for c, s, e in events:
                h[math.floor(s) : math.ceil(e), c] = 1
            np.save(harvest / f"{vid}.npy", h)
    return root


@pytest.fixture(scope="module")
def sound_root(tmp_path_factory) -> Path:
    return _make_root(tmp_path_factory.mktemp("unav") / "root")


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "broken"))


def test_sound_root_passes(sound_root: Path, cli):
    report = check_unav_root(sound_root)
    assert report.ok, report.problems()
    seg = next(f for f in report.folders if f.kind == "clip_segments")
    assert {s: (v.expected, v.present) for s, v in seg.splits.items()} == {
        "train": (2, 2),
        "val": (1, 1),
        "test": (1, 1),
    }
    assert report.agreement and report.agreement[0].outside == 0
    res = cli("data", "check", sound_root, "--no-progress")
    assert res.code == 0 and "OK: no problems found" in res.out
    assert "feats/visual_features_i3d_flow" in res.out and "unav100_annotations.json" in res.out


def test_broken_files_one_line_each(sound_root: Path, tmp_path: Path, cli):
    root = _copy(sound_root, tmp_path)
    clip = root / FEATURE_KINDS["clip_segments"].folder
    clap = root / FEATURE_KINDS["clap_segments"].folder
    rgb = root / FEATURE_KINDS["unav_i3d_rgb"].folder
    flow = root / FEATURE_KINDS["unav_i3d_flow"].folder
    (clip / "bbbbbbbbbbb.npy").unlink()  # missing
    (rgb / "ddddddddddd_rgb.npy").unlink()  # missing, named by its published file name
    np.save(clap / "ccccccccccc.npy", np.zeros((20, 512), np.float32))  # T is 21
    np.save(rgb / "-aaaaaaaaaa_rgb.npy", np.zeros((100, 1024), np.float32))  # 32 s of rows
    bad = np.zeros((29, 1024), np.float32)
    bad[3, 3] = np.nan
    np.save(flow / "bbbbbbbbbbb_flow.npy", bad)
    (flow / "ddddddddddd_flow.npy").write_bytes(b"not an array")
    np.save(clip / "zzzzzzzzzzz.npy", np.zeros((3, 768), np.float32))  # of no video
    problems = check_unav_root(root).problems()
    expected = [
        "feats_CLIP/segment_feats/bbbbbbbbbbb.npy: missing (train)",
        "feats/visual_features_i3d_rgb/ddddddddddd_rgb.npy: missing (test)",
        "feats_CLAP/segment_feats/ccccccccccc.npy: shape (20, 512), expected (21, 512)",
        "feats/visual_features_i3d_rgb/-aaaaaaaaaa_rgb.npy: 100 rows cover 32.0 s",
        "feats/visual_features_i3d_flow/bbbbbbbbbbb_flow.npy: 1 non-finite value (NaN or inf)",
        "feats/visual_features_i3d_flow/ddddddddddd_flow.npy: not a readable .npy file",
    ]
    assert len(problems) == len(expected), problems
    for line in expected:
        assert sum(p.startswith(line) for p in problems) == 1, (line, problems)
    assert all("\n" not in p for p in problems)
    report = check_unav_root(root)
    assert next(f for f in report.folders if f.kind == "clip_segments").extra == ["zzzzzzzzzzz.npy"]
    quick = check_unav_root(root, quick=True).problems()  # headers only: no NaN found
    assert len(quick) == 5
    res = cli("data", "check", root, "--no-progress", "--show", "20")
    assert res.code == 1 and "6 problems:" in res.out
    assert "bbbbbbbbbbb.npy: missing (train)" in res.out


def test_all_annotation_problems_reported(sound_root: Path, tmp_path: Path, cli):
    root = _copy(sound_root, tmp_path)
    path = root / "unav100_annotations.json"
    data = json.loads(path.read_text())
    db = data["database"]
    db["-aaaaaaaaaa"]["annotations"][0]["label"] = "woman speaking"
    db["-aaaaaaaaaa"]["annotations"][1]["segment"] = [5, 13]
    db["ccccccccccc"]["annotations"][0]["segment"] = [2, 1]
    del db["ddddddddddd"]["subset"]
    path.write_text(json.dumps(data))
    report = check_unav_root(root)
    lines = report.problems()
    assert sum("unav100_annotations.json: video" in p for p in lines) == 4, lines
    assert any(
        "annotations[0].label 'woman speaking' does not match label_id 0" in p for p in lines
    )
    assert any("annotations[1].segment [5, 13] is outside [0, 12.5]" in p for p in lines)
    assert any("video 'ccccccccccc': annotations[0].segment [2, 1] is reversed" in p for p in lines)
    assert any("video 'ddddddddddd': missing key 'subset'" in p for p in lines)
    # the videos with problems are left out; their files become extra, never crash the check
    assert report.annotations["unav100_annotations.json"] == "4 problems (listed below)"
    path.write_text("{not json")
    res = cli("data", "check", root, "--no-progress")
    assert res.code == 1 and "not JSON" in res.out


def test_harvest_outside_the_weak_labels(sound_root: Path, tmp_path: Path):
    root = _copy(sound_root, tmp_path)
    h = np.zeros((10, len(UNAV)), np.uint8)
    h[2, 7] = 1  # bbbbbbbbbbb is tagged with class 3 only
    np.save(root / HARVEST_FOLDERS["audio"] / "bbbbbbbbbbb.npy", h)
    report = check_unav_root(root)
    assert len(report.problems()) == 1 and "outside the clips' weak labels" in report.problems()[0]
    assert check_unav_root(root, accept_mismatch=True).ok
    np.save(root / HARVEST_FOLDERS["audio"] / "bbbbbbbbbbb.npy", np.zeros((11, 100), np.uint8))
    assert check_unav_root(root).problems() == [
        "CLAP/segment_pseudo_labels/bbbbbbbbbbb.npy: shape (11, 100), expected (10, 100)"
    ]


def test_real_annotation_file_checks_clean(unav_root: Path, cli):
    res = cli("data", "check", unav_root, "--no-progress")
    assert res.code == 0, res.out
    assert "unav100_annotations.json ok" in " ".join(res.out.split())
    assert "no feature folder" in res.out and "OK: no problems found" in res.out
