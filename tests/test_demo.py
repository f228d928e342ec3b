"""A miniature ``avparse demo`` end to end: data, every method's training, scores, results and
pictures; reuse only on the same data."""

from __future__ import annotations

import json

from avparse.demo import METHODS, SCORE_KEYS, format_table, pick_clip

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
    assert {m: (out / m / "checkpoint.pt").stat().st_mtime_ns for m in stamps} == stamps
    assert json.loads((out / "results.json").read_text()) == scores
    # Other data (another seed) retrains every method, though the training settings are equal.
    # --uwav-network adds a fifth column: UWAV's objective on UWAV's network (the others VALOR's).
    third = cli("demo", "--out", out, *TINY, "--no-plot", "--seed", "1", "--uwav-network")
    assert third.code == 0, third.err
    assert "generated again" in third.out and third.out.count("training again") == len(keys)
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
