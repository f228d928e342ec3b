"""Task ``unav``: train and evaluate on videos of any length (a tiny hand-built UnAV-100 root),
scores against a plain per-clip loop, prediction TSVs with seconds read back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from avparse.data.layout import (
    FEATURE_KINDS,
    HARVEST_FOLDERS,
    SOFT_HARVEST_FOLDERS,
    UNAV_FEATURE_RATE,
)
from avparse.data.unav_events import read_events_tsv, write_events_tsv
from avparse.errors import AvparseError
from avparse.train.task_unav import scores
from avparse.vocab import UNAV

SPLITS = {"train": 8, "validation": 3, "test": 3}
KINDS = ("unav_vggish", "unav_i3d_rgb", "unav_i3d_flow", "clip_segments", "clap_segments")


def make_unav_root(root: Path, seed: int = 0, harvest: bool = False) -> Path:
    """A dozen videos of 2.5-24 s, two classes with a learnable signal in every feature."""
    rng = np.random.default_rng(seed)
    database = {}
    k = 0
    for subset, n in SPLITS.items():
        for _ in range(n):
            vid = f"vid{k:08d}"
            k += 1
            duration = float(rng.uniform(2.5, 24.0))
            cls = int(rng.integers(0, 2))
            start = float(rng.uniform(0, duration / 2))
            end = float(min(duration, start + rng.uniform(1, duration / 2)))
            database[vid] = {
                "duration": round(duration, 2),
                "subset": subset,
                "annotations": [
                    {"segment": [round(start, 2), round(end, 2)], "label": UNAV.names[cls],
                     "label_id": cls}
                ],
            }  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    (root / "unav100_annotations.json").write_text(json.dumps({"database": database}))
    from avparse.data.unav import UnAVAnnotations

    ann = UnAVAnnotations(root)
    for split in ("train", "val", "test"):
        dense = ann.dense(split)
        for i, vid in enumerate(ann.videos(split)):
            on = dense[i].astype(np.float32)  # (T, 100)
            t = len(on)
            for kind in KINDS:
                fk = FEATURE_KINDS[kind]
                rows = max(1, round(ann.durations(split)[i] * UNAV_FEATURE_RATE)) if fk.rate else t
                x = rng.normal(size=(rows, fk.dim)).astype(np.float32)
                seg = np.minimum((np.arange(rows) * t) // rows, t - 1)
                x[:, :2] += 3 * on[seg, :2]
                (root / fk.folder).mkdir(parents=True, exist_ok=True)
                np.save(root / fk.folder / fk.file_name(vid), x)
            if harvest and split == "train":
                for folder in HARVEST_FOLDERS.values():
                    (root / folder).mkdir(parents=True, exist_ok=True)
                    np.save(root / folder / f"{vid}.npy", on.astype(np.uint8))
                for folder in SOFT_HARVEST_FOLDERS.values():
                    (root / folder).mkdir(parents=True, exist_ok=True)
                    np.save(root / folder / f"{vid}.npy", (0.9 * on).astype(np.float32))
    return root


@pytest.fixture(scope="module")
def unav(tmp_path_factory) -> Path:
    return make_unav_root(tmp_path_factory.mktemp("unav") / "root", harvest=True)


TINY = ["--preset", "tiny", "--set", "audio_feature=unav_vggish", "--set",
        "visual_feature=unav_i3d_rgb", "--set", "motion_feature=unav_i3d_flow"]  # fmt: skip


def test_train_and_evaluate_unav_end_to_end(unav: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    res = cli("train", "--data", unav, "--task", "unav", *TINY, "--loss", "valor", "--epochs",
              "2", "--batch-size", "4", "--out", out, "--no-progress")  # fmt: skip
    assert res.code == 0, res.err
    assert "seg_av" in res.out
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(math.isfinite(r["train_loss"]) for r in log)
    assert {"val_seg_av", "val_evt_av"} <= set(log[0])
    run = json.loads((out / "run.json").read_text())
    assert run["task"] == "unav" and run["status"] == "finished"
    assert run["model"]["vocabulary"] == "unav" and run["model"]["num_classes"] == 100
    manifest = json.loads((unav / "packed_unav" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["arrays"]["unav_vggish"]["ragged"] is True

    ev = tmp_path / "eval"
    res = cli("evaluate", "--data", unav, "--checkpoint", out / "model", "--task", "unav",
              "--split", "test", "--out", ev)  # fmt: skip
    assert res.code == 0, res.err
    metrics = json.loads((ev / "metrics.json").read_text())
    assert set(metrics) == {"seg_av", "evt_av"}
    from avparse.data.unav import UnAVAnnotations

    ann = UnAVAnnotations(unav)
    probs = np.load(ev / "probs.npz")
    lengths = ann.lengths("test")
    assert probs["lengths"].tolist() == lengths.tolist()
    assert probs["frame_prob"].shape == (3, lengths.max(), 2, 100)
    # the audio-visual TSV read back gives the scores of metrics.json
    pred = read_events_tsv(ev / "audio_visual.tsv", ann.videos("test"), lengths, UNAV)
    t = int(lengths.max())
    got = scores(pred.pad(length=t)[0], ann.dense("test").pad(length=t)[0])
    assert got == pytest.approx(metrics)


def test_train_unav_with_other_losses_and_a_wrong_vocabulary(unav: Path, tmp_path: Path, cli):
    for loss in ("han", "uwav"):
        res = cli("train", "--data", unav, "--task", "unav", *TINY, "--loss", loss, "--epochs",
                  "1", "--batch-size", "4", "--out", tmp_path / loss, "--quiet")  # fmt: skip
        assert res.code == 0, res.err
        log = json.loads((tmp_path / loss / "log.jsonl").read_text().splitlines()[0])
        assert math.isfinite(log["train_loss"])
    res = cli("train", "--data", unav, "--task", "unav", *TINY, "--set", "vocabulary=llp",
              "--epochs", "1", "--out", tmp_path / "r2", "--quiet")  # fmt: skip
    assert res.code == 2 and "UnAV-100 vocabulary" in res.err and "\n" not in res.err.strip()


def _published_loop(pred: list[np.ndarray], true: list[np.ndarray]) -> tuple[float, float]:
    """The LLP metric of one modality written plainly, clip by clip and class by class."""

    def runs(col: np.ndarray) -> list[tuple[int, int]]:
        out, start = [], None
        for i, v in enumerate([*col.tolist(), False]):
            if v and start is None:
                start = i
            elif not v and start is not None:
                out.append((start, i))
                start = None
        return out

    def iou(a, b) -> float:
        inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
        return inter / (a[1] - a[0] + b[1] - b[0] - inter)

    seg_f, evt_f = [], []
    for p, g in zip(pred, true, strict=True):
        seg_cls, evt_cls = [], []
        for c in range(p.shape[1]):
            tp = int((p[:, c] & g[:, c]).sum())
            fp, fn = int(p[:, c].sum()) - tp, int(g[:, c].sum()) - tp
            if tp + fp + fn:
                seg_cls.append(2 * tp / (2 * tp + fp + fn))
            pr, gr = runs(p[:, c]), runs(g[:, c])
            etp = sum(any(iou(a, b) >= 0.5 for b in gr) for a in pr)
            efp = len(pr) - etp
            efn = sum(not any(iou(a, b) >= 0.5 for a in pr) for b in gr)
            if etp + efp + efn:
                evt_cls.append(2 * etp / (2 * etp + efp + efn))
        seg_f.append(np.mean(seg_cls) if seg_cls else 1.0)
        evt_f.append(np.mean(evt_cls) if evt_cls else 1.0)
    return 100 * float(np.mean(seg_f)), 100 * float(np.mean(evt_f))


def test_scores_on_clips_of_any_length_equal_a_plain_per_clip_loop() -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 30, size=25)
    pred = [rng.uniform(size=(t, 6)) < 0.3 for t in lengths]
    true = [rng.uniform(size=(t, 6)) < 0.25 for t in lengths]
    t = int(lengths.max())

    def padded(clips):
        out = np.zeros((len(clips), t, 6), dtype=bool)
        for i, c in enumerate(clips):
            out[i, : len(c)] = c
        return out

    seg, evt = _published_loop(pred, true)
    got = scores(padded(pred), padded(true))
    assert got["seg_av"] == pytest.approx(seg, abs=1e-9)
    assert got["evt_av"] == pytest.approx(evt, abs=1e-9)


def test_events_tsv_has_seconds_and_reads_back(tmp_path: Path) -> None:
    videos = ["a", "b"]
    durations = np.array([3.4, 6.0])
    m = np.zeros((2, 6, 100), dtype=bool)
    m[0, 1:4, 7] = True  # to the end of a 3.4-s video
    m[1, 0:2, 0] = m[1, 4:6, 0] = True
    path = tmp_path / "e.tsv"
    assert write_events_tsv(path, videos, durations, m, UNAV) == 3
    lines = path.read_text().splitlines()
    assert lines[0] == "video_id\tonset\toffset\tevent_labels"
    assert lines[1] == f"a\t1\t3.4\t{UNAV.names[7]}"
    back = read_events_tsv(path, videos, [4, 6], UNAV)
    np.testing.assert_array_equal(back.pad(length=6)[0], m)
    with pytest.raises(ValueError, match="after the end"):
        bad = m.copy()
        bad[0, 5, 0] = True
        write_events_tsv(path, videos, durations, bad, UNAV)
    path.write_text("video_id\tonset\toffset\tevent_labels\nzzz\t0\t1\tx\n")
    with pytest.raises(AvparseError, match=r"e\.tsv:2: video 'zzz' is not in the split"):
        read_events_tsv(path, videos, [4, 6], UNAV)


def test_data_pack_of_a_unav_root_is_ragged_and_in_its_own_store(unav: Path, tmp_path: Path):
    from avparse.data.store import default_store, open_split, pack
    from avparse.data.unav import UnAVAnnotations

    out = tmp_path / "store"
    pack(unav, out)
    assert default_store(unav).name == "packed_unav"
    ann = UnAVAnnotations(unav)
    for split in ("train", "val", "test"):
        packed = open_split(out, split)
        assert packed.lengths.tolist() == ann.lengths(split).tolist()
        assert set(KINDS) <= set(packed.arrays)
        assert ("harvest_audio" in packed.arrays) == (split == "train")
    from avparse.data.files import pool_segments

    vid = ann.videos("val")[1]
    raw = np.load(unav / FEATURE_KINDS["unav_i3d_rgb"].folder / f"{vid}_rgb.npy")
    np.testing.assert_array_equal(
        open_split(out, "val").ragged("unav_i3d_rgb")[1], pool_segments(raw, ann.lengths("val")[1])
    )


def test_the_unav_preset_is_the_task_and_its_published_features() -> None:
    from avparse.train.recipe import resolve_configs

    model, train, name = resolve_configs("unav")
    assert name == "unav" and train.task == "unav" and train.loss == "han"
    assert model.num_classes == 100 and model.feature_kinds == {
        "audio": "unav_vggish", "visual": "unav_i3d_rgb", "motion": "unav_i3d_flow"
    }  # fmt: skip


def test_unav_clip_preset_trains_without_a_3d_input(unav: Path, tmp_path: Path, cli) -> None:
    small = ["--set", "num_layers=1", "--set", "dim_feedforward=32", "--set", "nhead=2"]
    res = cli("train", "--data", unav, "--preset", "unav-clip", *small, "--epochs", "1",
              "--batch-size", "4", "--out", tmp_path / "r", "--quiet")  # fmt: skip
    assert res.code == 0, res.err
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["model"]["motion_feature"] == "none" and run["task"] == "unav"
    res = cli("evaluate", "--data", unav, "--checkpoint", tmp_path / "r" / "model", "--task",
              "unav", "--out", tmp_path / "e", "--quiet")  # fmt: skip
    assert res.code == 0, res.err
    assert (tmp_path / "e" / "audio_visual.tsv").is_file()


@pytest.mark.slow
def test_two_processes_on_videos_of_any_length_match_one(unav: Path, tmp_path: Path) -> None:
    """torchrun with length buckets, masks and masked segment losses: the global batches are
    dealt to the ranks and each rank's segment terms are divided by the real segments per rank
    of the global batch, so 2 processes train what 1 does (dropout off; tolerance as in
    test_ddp.py: float32 summation order)."""
    import os
    import socket
    import subprocess
    import sys

    import torch

    args = ["--data", str(unav), "--task", "unav", *TINY, "--loss", "valor", "--epochs", "2",
            "--batch-size", "4", "--set", "dropout=0", "--quiet"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    repo = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), env.get("PYTHONPATH", "")])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for out, launcher in (
        ("one", [sys.executable, "-m", "avparse"]),
        ("two", [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                 "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "avparse"]),
    ):  # fmt: skip
        proc = subprocess.run([*launcher, "train", *args, "--out", str(tmp_path / out)],
                              capture_output=True, text=True, env=env, timeout=240)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]
    for key, a in one.items():
        atol = 2e-3 if key in ("fc_frame_att.bias", "fc_av_att.bias") else 1e-4
        torch.testing.assert_close(a, two[key], rtol=0, atol=atol, msg=key)


def test_the_synthetic_unav_world_trains_and_evaluates(tmp_path: Path, cli) -> None:
    """`avparse data synth --task unav` -> train with its harvests (uwav) -> evaluate."""
    root = tmp_path / "syn"
    res = cli("data", "synth", root, "--task", "unav", "--clips", "12", "--val-clips", "8",
              "--test-clips", "6", "--features", "published")  # fmt: skip
    assert res.code == 0, res.err
    res = cli("train", "--data", root, "--task", "unav", *TINY, "--loss", "uwav", "--epochs",
              "1", "--batch-size", "4", "--out", tmp_path / "run", "--quiet")  # fmt: skip
    assert res.code == 0, res.err
    res = cli("evaluate", "--data", root, "--task", "unav", "--checkpoint",
              tmp_path / "run" / "model", "--out", tmp_path / "ev", "--quiet")  # fmt: skip
    assert res.code == 0, res.err
    from avparse.data.unav import UnAVAnnotations

    ann = UnAVAnnotations(root)
    back = read_events_tsv(tmp_path / "ev" / "audio.tsv", ann.videos("test"), ann.lengths("test"),
                           UNAV)  # fmt: skip
    assert len(back) == 6


def test_a_harvest_outside_the_weak_labels_is_refused(tmp_path: Path, cli) -> None:
    root = make_unav_root(tmp_path / "root", seed=1, harvest=True)
    from avparse.data.unav import UnAVAnnotations

    vid = UnAVAnnotations(root).videos("train")[0]
    path = root / HARVEST_FOLDERS["audio"] / f"{vid}.npy"
    harvest = np.load(path)
    harvest[0, 50] = 1  # class 50 is in no video's labels
    np.save(path, harvest)
    res = cli("train", "--data", root, "--task", "unav", *TINY, "--loss", "valor", "--epochs",
              "1", "--out", tmp_path / "run", "--quiet")  # fmt: skip
    assert res.code == 2 and "lie outside the clips' weak labels" in res.err and vid in res.err


def test_a_root_without_test_videos_trains_without_the_test_pass(tmp_path: Path, cli) -> None:
    root = make_unav_root(tmp_path / "root", seed=2)
    ann = json.loads((root / "unav100_annotations.json").read_text())
    ann["database"] = {k: v for k, v in ann["database"].items() if v["subset"] != "test"}
    (root / "unav100_annotations.json").write_text(json.dumps(ann))
    res = cli("train", "--data", root, "--task", "unav", *TINY, "--loss", "han", "--epochs", "1",
              "--batch-size", "4", "--out", tmp_path / "run")  # fmt: skip
    assert res.code == 0, res.err
    assert "test:" not in res.out and not (tmp_path / "run" / "test_metrics.json").exists()
