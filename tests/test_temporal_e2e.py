"""End to end on tiny roots: class text embeddings from the tiny CLIP / CLAP text towers (cached
in the root), ``avparse teacher train`` on a UnAV-like root (1 epoch, resume), ``avparse teacher
label`` of an LLP-like root, ``data check`` of its harvest, and the student trained on it with
``--harvest temporal`` (``--loss uwav`` and ``--loss valor``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avparse.data.layout import SEGMENT_FOLDERS, TEMPORAL_HARVEST, UNAV_ANNOTATIONS
from avparse.temporal.text import cache_path, event_features
from avparse.vocab import LLP, UNAV

SETS = ["audio_dim=12", "visual_dim=10", "hidden_dim=16", "nhead=2", "ff_dim=24",
        "num_layers=1", "audio_text_dim=6", "visual_text_dim=8", "clip_text=tiny/clip",
        "clap_text=tiny/clap", "epochs=1", "batch_size=4"]  # fmt: skip


def _text_cache(root: Path, vocab, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for m, source, dim in (("audio", "tiny/clap", 6), ("visual", "tiny/clip", 8)):
        path = cache_path(root, m, source, vocab)
        path.parent.mkdir(parents=True, exist_ok=True)
        e = rng.normal(size=(len(vocab), dim)).astype(np.float32)
        np.save(path, e / np.linalg.norm(e, axis=1, keepdims=True))


def _segments(root: Path, lengths: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for m, dim in (("audio", 12), ("visual", 10)):
        (root / SEGMENT_FOLDERS[m]).mkdir(parents=True, exist_ok=True)
        for clip, t in lengths.items():
            x = rng.normal(size=(t, dim)).astype(np.float32)
            np.save(root / SEGMENT_FOLDERS[m] / f"{clip}.npy", x)


def _unav_root(root: Path) -> Path:
    rng = np.random.default_rng(0)
    database, lengths = {}, {}
    for i, subset in enumerate(["train"] * 10 + ["validation"] * 4 + ["test"] * 4):
        vid = f"vid{i:03d}"
        duration = float(rng.uniform(4, 15))
        c = int(rng.integers(0, 5))
        start = float(rng.uniform(0, duration / 2))
        events = [{"segment": [start, min(duration, start + 3)], "label": UNAV.names[c],
                   "label_id": c}]  # fmt: skip
        database[vid] = {"duration": duration, "subset": subset, "annotations": events}
        lengths[vid] = int(np.ceil(duration))
    root.mkdir(parents=True)
    (root / UNAV_ANNOTATIONS).write_text(json.dumps({"version": "1", "database": database}))
    _segments(root, lengths)
    _text_cache(root, UNAV)
    return root


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> tuple[Path, Path]:
    from avparse.teachers.tiny import save_tiny_teachers

    return save_tiny_teachers(tmp_path_factory.getbasetemp() / "avparse-tiny-teachers")


def test_event_features_computed_once_and_cached(tiny_text, tmp_path: Path, monkeypatch) -> None:
    clip, clap = tiny_text
    sources = {"audio": str(clap), "visual": str(clip)}
    vocab = LLP.from_names(["dog barking", "car engine", "speech"], name="mine")
    first = event_features(tmp_path, sources, vocab)
    assert first["visual"].shape == (3, 16) and first["audio"].shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(first["visual"], axis=1), 1, atol=1e-5)
    path = cache_path(tmp_path, "visual", str(clip), vocab)
    assert (
        path.is_file() and json.loads(path.with_suffix(".json").read_text())["vocabulary"] == "mine"
    )

    def fail(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr("avparse.temporal.text.compute", fail)
    again = event_features(tmp_path, sources, vocab)
    np.testing.assert_array_equal(again["audio"], first["audio"])
    other = LLP.from_names(["dog barking", "speech"], name="mine")  # same name, other prompts
    assert cache_path(tmp_path, "visual", str(clip), other) != path


def test_event_features_offline_names_the_model(tmp_path: Path, monkeypatch, cli) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from avparse.errors import AvparseError

    with pytest.raises(AvparseError, match=r"laion/clap-htsat-fused.*offline"):
        event_features(tmp_path, {"audio": "laion/clap-htsat-fused",
                                  "visual": "openai/clip-vit-large-patch14"}, LLP)  # fmt: skip


def test_pretrain_label_and_train_the_student(tmp_path: Path, cli) -> None:
    from avparse.synthetic import generate_llp
    from avparse.temporal.data import load_split

    unav = _unav_root(tmp_path / "unav")
    run = tmp_path / "teacher"
    sets = [x for s in SETS for x in ("--set", s)]
    res = cli("teacher", "train", "--data", str(unav), "--out", str(run), "--preset", "tiny",
              *sets, "--no-progress")  # fmt: skip
    assert res.code == 0, res.err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["teacher"]["vocabulary"] == "unav"
    # the teacher's own recipe alone (0.2.0 also saved the student's loss, task, harvest, ...)
    assert not {"loss", "task", "harvest", "uwav_mixup"} & set(info["train"])
    from avparse.temporal.pretrain import TRAIN_FIELDS

    assert list(info["train"]) == list(TRAIN_FIELDS) and info["train"]["epochs"] == 1
    student = cli("teacher", "train", "--data", str(unav), "--out", str(tmp_path / "x"),
                  "--preset", "tiny", "--set", "loss=uwav", "--no-progress")  # fmt: skip
    assert student.code == 2 and "--set loss: not a teacher or training setting" in student.err
    assert set(json.loads((run / "test_metrics.json").read_text())) == {"seg_av", "evt_av"}
    assert (run / "model" / "model.safetensors").is_file()
    again = cli("teacher", "train", "--data", str(unav), "--out", str(run), "--preset", "tiny",
                *sets, "--no-progress")  # fmt: skip
    assert again.code == 2 and "--overwrite" in again.err
    resumed = cli("teacher", "train", "--data", str(unav), "--out", str(run), "--resume",
                  "--no-progress")  # fmt: skip
    assert resumed.code == 0, resumed.err

    llp = generate_llp(tmp_path / "llp", n_train=8, n_val=6, n_test=6)
    ids = [i for s in ("train", "val", "test") for i in load_split(llp, s, segments=False).ids]
    _segments(llp, dict.fromkeys(ids, 10), seed=1)
    _text_cache(llp, LLP, seed=1)
    res = cli("teacher", "label", "--teacher", str(run), "--data", str(llp), "--no-progress")
    assert res.code == 0, res.err
    assert "thresholds chosen on llp val dense labels" in res.out
    res = cli("teacher", "label", "--data", str(llp), "--report")
    assert res.code == 0 and "temporal" in res.out and "frame" in res.out
    import shutil

    for m in ("audio", "visual"):  # the tiny teacher's inputs are not (10, 768) / (10, 512)
        shutil.move(llp / SEGMENT_FOLDERS[m], tmp_path / f"segments-{m}")
    check = cli("data", "check", str(llp), "--no-progress")
    assert check.code == 0, check.out + check.err
    assert f"{TEMPORAL_HARVEST}/CLAP/segment_pseudo_labels" in check.out
    for loss in ("uwav", "valor"):
        res = cli("train", "--data", str(llp), "--preset", "tiny", "--loss", loss, "--harvest",
                  "temporal", "--epochs", "1", "--out", str(tmp_path / loss), "--no-progress")  # fmt: skip
        assert res.code == 0, res.err
        saved = json.loads((tmp_path / loss / "run.json").read_text())
        assert saved["train"]["harvest"] == "temporal"


def test_train_on_a_root_without_temporal_labels_says_how(tmp_path: Path, cli) -> None:
    from avparse.synthetic import generate_llp

    llp = generate_llp(tmp_path / "llp", n_train=8, n_val=4, n_test=4)
    res = cli("train", "--data", str(llp), "--preset", "tiny", "--loss", "valor", "--harvest",
              "temporal", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress")  # fmt: skip
    assert res.code == 2
    assert "avparse teacher label" in res.err and "--harvest frame" in res.err
    res = cli("teacher", "train", "--data", str(llp), "--out", str(tmp_path / "t"), "--preset",
              "tiny", *[x for s in SETS for x in ("--set", s)], "--no-progress")  # fmt: skip
    assert res.code == 2 and "dense audio-visual labels" in res.err


@pytest.mark.slow
def test_teacher_train_under_torchrun_matches_one_process(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    unav = _unav_root(tmp_path / "unav")
    sets = [x for s in [*SETS, "dropout=0", "epochs=2"] for x in ("--set", s)]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = [sys.executable, "-m", "avparse", "teacher", "train", "--data", str(unav),
            "--preset", "tiny", *sets, "--no-progress"]  # fmt: skip
    one = subprocess.run([*base, "--out", str(tmp_path / "one")], env=env, capture_output=True,
                         text=True, timeout=240)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    run = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={port}", *base[1:],
           "--out", str(tmp_path / "two")]  # fmt: skip
    two = subprocess.run(run, env=env, capture_output=True, text=True, timeout=240)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("best epoch") == 1  # rank 0 prints
    logs = [
        [json.loads(x)["train_loss"] for x in (tmp_path / r / "log.jsonl").read_text().splitlines()]
        for r in ("one", "two")
    ]
    assert logs[0] == pytest.approx(logs[1], rel=1e-5)
