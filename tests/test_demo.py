"""A miniature ``avparse demo`` end to end: data, every method's training, scores, results and
pictures; reuse only on the same data."""

from __future__ import annotations

import json

from avparse.demo import METHODS, SCORE_KEYS, DemoConfig, format_table, pick_clip, scores_title

TINY = (
    "--clips", "24", "--val-clips", "8", "--test-clips", "8", "--epochs", "1", "--warmup", "0",
    "--d-model", "8", "--heads", "2", "--ff", "16", "--batch-size", "8",
)  # fmt: skip


def test_miniature_demo_runs_and_reuses(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--out", out, *TINY, "--quiet")
    assert result.code == 0, result.err
    assert "data:" not in result.out and "training" not in result.out  # --quiet: the table only
    assert result.err == ""
    scores = json.loads((out / "results.json").read_text())
    keys = [m.key for m in METHODS]
    assert keys == ["han", "valor_fused", "valor", "uwav"] and list(scores) == keys
    for method in scores:
        assert list(scores[method]) == list(SCORE_KEYS)
        assert all(0.0 <= v <= 100.0 for v in scores[method].values())
    assert all(m.title in result.out for m in METHODS) and "Type@AV" in result.out
    assert "Test scores (F-score %, 8 synthetic clips, float32)\n" in result.out
    for method in keys:
        png = out / f"timeline_{method}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The fused teacher's run read the fused labels (same logits, both modalities alike).
    fused = (out / "data_fused" / "CLIP/segment_pseudo_labels").resolve()
    assert fused == (out / "data" / "fused" / "CLIP/segment_pseudo_labels").resolve()
    # A second run with the same flags reuses the data and every finished run.
    stamps = {m: (out / m / "checkpoint.pt").stat().st_mtime_ns for m in keys}
    again = cli("demo", "--out", out, *TINY, "--no-plot", "--no-progress")
    assert again.code == 0, again.err
    assert "reused" in again.out and again.err == ""  # notes, but no progress lines
    assert "training" not in again.out  # nothing trains: no "training HAN (1 epoch)" line
    assert {m: (out / m / "checkpoint.pt").stat().st_mtime_ns for m in stamps} == stamps
    assert json.loads((out / "results.json").read_text()) == scores
    # Other data (another seed) retrains every method, though the training settings are equal.
    # --uwav-network adds a fifth column: UWAV's objective on UWAV's network (the others VALOR's).
    # --no-progress hides progress only: the epoch lines stay (--quiet drops them).
    third = cli(
        "demo", "--out", out, *TINY, "--no-plot", "--seed", "1", "--uwav-network", "--no-progress"
    )
    assert third.code == 0, third.err
    assert "generated again" in third.out and third.out.count("training again") == len(keys)
    assert third.out.count("training UWAV (1 epoch)\n") == 1
    assert third.out.count("epoch 1/1 ") == len(keys) + 1 and "batch" not in third.err
    assert all((out / m / "checkpoint.pt").stat().st_mtime_ns != stamps[m] for m in keys)
    assert list(json.loads((out / "results.json").read_text())) == [*keys, "uwav_net"]
    archs = {m: json.loads((out / m / "model" / "config.json").read_text())["arch"]
             for m in [*keys, "uwav_net"]}  # fmt: skip
    assert archs == {**dict.fromkeys(keys, "valor"), "uwav_net": "uwav"}
    assert "UWAV net" in third.out and "VALOR's network" in third.out


def test_pick_clip_and_table():
    import numpy as np

    audio = np.zeros((3, 10, 25), dtype=bool)
    visual = np.zeros_like(audio)
    audio[1, :5, 0] = True
    visual[1, :5, 0] = True  # aligned: no disagreement
    audio[2, :3, 1] = True  # heard, not seen
    assert pick_clip(audio, visual) == 2
    table = format_table(
        {"han": dict.fromkeys(SCORE_KEYS, 1.0), "valor_fused": dict.fromkeys(SCORE_KEYS, 2.5)}
    )
    assert table.count("\n") == 10 and "2.50" in table and "VALOR fused" in table
    title = scores_title(DemoConfig(test_clips=1, precision="bfloat16"))
    assert title == "Test scores (F-score %, 1 synthetic clip, bfloat16 autocast)"


def test_demo_diet_shared_store_and_half_precision_frames(tmp_path):
    """The fused-teacher root packs into the main root's store: features are shared, and the
    harvest arrays follow whichever root was loaded last (issue 17 item 4); frame-level files
    are written in float16 on request, and the store keeps their float32 averages."""
    import numpy as np

    from avparse.data.files import pool_segments
    from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS
    from avparse.model.config import model_config
    from avparse.synthetic import fused_root, generate_llp
    from avparse.train.tasks import LoadRequest, get_task

    data = generate_llp(tmp_path / "data", n_train=12, n_val=4, n_test=4, frame_dtype="float16")
    fused = fused_root(data, tmp_path / "data_fused")
    clip = sorted((data / FEATURE_KINDS["res152"].folder).iterdir())[0]
    assert np.load(clip).dtype == np.float16 and np.load(clip).shape == (80, 2048)
    store, cfg, task = data / "packed", model_config("tiny"), get_task("llp")
    targets = ("weak", "harvest_audio", "harvest_visual")
    loaded = {}
    for name, root in (("modality", data), ("fused", fused), ("again", data)):
        split = task.load(LoadRequest(root, store, "train", cfg, targets))
        loaded[name] = {k: np.array(v) for k, v in {**split.inputs, **split.targets}.items()}
        first = split.filenames[0][:11]
        expect = np.load(root / HARVEST_FOLDERS["visual"] / f"{first}.npy")
        assert np.array_equal(loaded[name]["harvest_visual"][0], expect)
    assert not (tmp_path / "data_fused" / "packed").exists()
    assert not np.array_equal(
        loaded["modality"]["harvest_visual"], loaded["fused"]["harvest_visual"]
    )
    for key in loaded["modality"]:
        assert np.array_equal(loaded["modality"][key], loaded["again"][key]), key
    for role in ("audio", "visual", "motion"):
        assert np.array_equal(loaded["modality"][role], loaded["fused"][role]), role
    # the store's visual rows are the float32 10-row averages of the float16 file
    frames = np.load(data / FEATURE_KINDS["res152"].folder / f"{split.filenames[0][:11]}.npy")
    pooled = pool_segments(frames.astype(np.float32), 10)
    assert np.allclose(loaded["again"]["visual"][0], pooled, atol=1e-6)


def test_demo_seeds_keeps_the_times_of_a_reused_seed(tmp_path, monkeypatch, capsys):
    """benchmarks/demo_seeds.py: a seed whose demo only read finished runs keeps the wall and CPU
    times recorded when it ran, and its line says "reused" (was: "0 s wall, 0 s CPU")."""
    import importlib.util
    from pathlib import Path

    import avparse.demo
    from avparse.demo import DemoResult

    path = Path(__file__).parents[1] / "benchmarks" / "demo_seeds.py"
    spec = importlib.util.spec_from_file_location("demo_seeds", path)
    assert spec is not None and spec.loader is not None
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)
    reused = False

    def fake_demo(cfg):
        scores = {m.key: dict.fromkeys(SCORE_KEYS, 50.0) for m in cfg.methods}
        return DemoResult(scores, cfg.out / "results.json", [], None, reused)

    monkeypatch.setattr(avparse.demo, "run_demo", fake_demo)
    harvest = dict.fromkeys(("modality", "fused"), dict.fromkeys(SCORE_KEYS, 40.0))
    monkeypatch.setattr(seeds, "harvest_scores", lambda data: harvest)
    monkeypatch.setattr(seeds, "print_differences", lambda runs, s: None)
    args = ["--out", str(tmp_path), "--seeds", "0", "--no-uwav-network"]
    assert seeds.main(args) == 0
    first = json.loads((tmp_path / "results.json").read_text())["seeds"]["0"]
    recorded = {"wall_s": 95.0, "cpu_s": 180.0}
    first.update(recorded)  # as a real run would have measured
    (tmp_path / "results.json").write_text(json.dumps({"seeds": {"0": first}, "summary": {}}))
    capsys.readouterr()
    reused = True
    assert seeds.main(args) == 0
    again = json.loads((tmp_path / "results.json").read_text())["seeds"]["0"]
    assert {k: again[k] for k in recorded} == recorded
    assert "seed 0: reused (recorded 95 s wall, 180 s CPU)" in capsys.readouterr().out
