"""--precision / --compile of train and evaluate: plumbing, resume, bfloat16, the fallback.

The equality of compiled and eager losses is checked by benchmarks/compile_check.py
(compilation takes minutes on two cores: a benchmark, not a test)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from avparse.utils import precision as P


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from avparse.synthetic import generate_llp

    return generate_llp(tmp_path_factory.mktemp("llp") / "root", n_train=16, n_val=8, n_test=8)


def test_bfloat16_training_is_kept_resumed_and_evaluated(root: Path, tmp_path: Path, cli):
    out, store = tmp_path / "run", tmp_path / "store"
    res = cli("train", "--data", root, "--preset", "tiny", "--epochs", "2", "--out", out,
              "--store", store, "--precision", "bfloat16", "--no-progress")  # fmt: skip
    assert res.code == 0, res.err
    run = json.loads((out / "run.json").read_text())
    assert run["train"]["precision"] == "bfloat16" and run["train"]["compile"] is False
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["train_loss"]) for r in log)
    # the master weights stay float32
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert all(t.dtype == torch.float32 for t in state["model"].values())
    # resume keeps the saved precision; another one is refused by name
    again = cli("train", "--data", root, "--out", out, "--resume", "--store", store,
                "--precision", "float32", "--no-progress")  # fmt: skip
    assert again.code == 2 and "precision ('bfloat16' -> 'float32')" in again.err
    same = cli("train", "--data", root, "--out", out, "--resume", "--store", store, "--quiet")
    assert same.code == 0, same.err
    # evaluate in both precisions: probabilities close, not identical
    probs = {}
    for prec in ("float32", "bfloat16"):
        ev = cli("evaluate", "--data", root, "--checkpoint", out / "model", "--store", store,
                 "--out", tmp_path / prec, "--precision", prec, "--quiet")  # fmt: skip
        assert ev.code == 0, ev.err
        import numpy as np

        probs[prec] = np.load(tmp_path / prec / "probs.npz")["frame_prob"]
    diff = abs(probs["float32"] - probs["bfloat16"]).max()
    assert 0 < diff < 0.05
    # without --precision, a run folder's model is evaluated in the precision it was trained in
    ev = cli("evaluate", "--data", root, "--checkpoint", out / "model", "--store", store,
             "--out", tmp_path / "as-trained")  # fmt: skip
    assert ev.code == 0, ev.err
    assert f"test: {out / 'model'} (bfloat16, as trained)" in ev.out
    as_trained = np.load(tmp_path / "as-trained" / "probs.npz")["frame_prob"]
    assert np.array_equal(as_trained, probs["bfloat16"])
    # the run folder itself is not a model folder: the message names the one inside
    bad = cli("evaluate", "--data", root, "--checkpoint", out, "--out", tmp_path / "bad")
    assert bad.code == 2 and f"{out / 'model'} is one" in bad.err


def test_bfloat16_autocast_runs_the_products_in_bfloat16() -> None:
    lin = torch.nn.Linear(4, 3)
    with P.autocast("cpu", "bfloat16"):
        y = lin(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16 and lin.weight.dtype == torch.float32
    with P.autocast("cpu", "float32"):
        assert lin(torch.ones(2, 4)).dtype == torch.float32


def test_compile_flag_is_kept_and_falls_back_with_one_note(
    root: Path, tmp_path: Path, cli, monkeypatch
) -> None:
    monkeypatch.setattr(P, "cannot_compile", lambda: "torch.compile needs a C++ compiler")
    out = tmp_path / "run"
    res = cli("train", "--data", root, "--preset", "tiny", "--epochs", "1", "--out", out,
              "--store", tmp_path / "store", "--compile", "--no-progress")  # fmt: skip
    assert res.code == 0, res.err
    notes = [line for line in res.err.splitlines() if "--compile" in line]
    assert notes == ["note: --compile: torch.compile needs a C++ compiler; running the model "
                     "uncompiled"]  # fmt: skip
    assert json.loads((out / "run.json").read_text())["train"]["compile"] is True


def test_a_failed_compilation_runs_the_eager_module() -> None:
    lin = torch.nn.Linear(2, 1)
    calls: list[str] = []

    def broken(*args):
        raise RuntimeError("backend compiler failed\nlong trace")

    net = P._EagerFallback(lin, broken, calls.append)
    x = torch.ones(1, 2)
    assert torch.equal(net(x), lin(x)) and torch.equal(net(x), lin(x))
    assert calls == ["--compile: compilation failed (backend compiler failed); running uncompiled"]
    assert list(net.parameters()) == list(lin.parameters())
    assert P.compiled(lin, False) is lin


def test_unknown_precision_is_refused(cli, root: Path, tmp_path: Path) -> None:
    from avparse.errors import AvparseError
    from avparse.train.recipe import TrainConfig

    with pytest.raises(AvparseError, match="unknown precision 'float16'"):
        TrainConfig(precision="float16")
    res = cli("train", "--data", root, "--preset", "tiny", "--out", tmp_path / "r",
              "--set", "precision=half")  # fmt: skip
    assert res.code == 2 and "unknown precision 'half'" in res.err


def test_parsing_precision_keeps_bfloat16_weights(tmp_path: Path) -> None:
    """--precision bfloat16 of parse / harvest: the image and audio towers and R(2+1)D-18 hold
    bfloat16 weights (no float32 copy, no autocast), the text towers stay float32, outputs are
    float32 and close to float32's."""
    import numpy as np

    pytest.importorskip("transformers")
    from avparse.features.extract import motion_features
    from avparse.features.r2plus1d import R2Plus1D18
    from avparse.teachers.clap import AudioTeacher
    from avparse.teachers.clip import VisualTeacher
    from avparse.teachers.tiny import save_tiny_teachers
    from avparse.vocab import LLP

    clip_dir, clap_dir = save_tiny_teachers(tmp_path / "teachers")
    visual = VisualTeacher(clip_dir, vocab=LLP, device="cpu", precision="bfloat16")
    assert visual.model.vision_model.embeddings.patch_embedding.weight.dtype == torch.bfloat16
    assert visual.model.text_model.embeddings.token_embedding.weight.dtype == torch.float32
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    full = VisualTeacher(clip_dir, vocab=LLP, device="cpu")
    a, b = full.embed_frames(frames), visual.embed_frames(frames)
    assert b.dtype == np.float32 and 0 < np.abs(a - b).max() < 0.05
    audio = AudioTeacher(clap_dir, vocab=LLP, device="cpu", precision="bfloat16")
    assert {p.dtype for p in audio.model.audio_model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in audio.model.text_model.parameters()} == {torch.float32}
    wave = np.random.default_rng(1).standard_normal(48_000).astype(np.float32) * 0.1
    emb = audio.embed(audio.prepare([wave]))
    assert emb.dtype == np.float32 and np.isfinite(emb).all()

    torch.manual_seed(0)
    r2p = R2Plus1D18(num_classes=4).eval()
    clip = np.random.default_rng(2).integers(0, 256, (16, 24, 24, 3), dtype=np.uint8)
    ref = motion_features(r2p, [clip], size=16, segments=2)[0]
    low = motion_features(r2p, [clip], size=16, segments=2, precision="bfloat16")[0]
    assert next(r2p.parameters()).dtype == torch.bfloat16
    assert low.dtype == np.float32 and np.abs(ref - low).max() < 0.05 * np.abs(ref).max()


def test_training_uses_the_fused_optimiser_and_leaves_torch_as_found(
    root: Path, tmp_path: Path
) -> None:
    """The fused AdamW kernel (torch >= 2.4 on CPU) does the per-parameter loop's update; a run
    turns off deterministic mode's NaN filling of new tensors for its steps only."""
    import torch.utils.deterministic as determinism

    from avparse.model.config import model_config
    from avparse.train.loop import train
    from avparse.train.recipe import build_optimizer, recipe

    cfg = recipe("tiny", {"epochs": 1})
    params = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(2)]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fused, _ = build_optimizer(params, cfg)
    assert fused.defaults["fused"] is True
    loop = torch.optim.AdamW(twins, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay)  # fmt: skip
    for _ in range(3):
        for group in (params, twins):
            for p in group:
                p.grad = torch.ones_like(p) * p.detach().sum()
        fused.step()
        loop.step()
    for a, b in zip(params, twins, strict=True):
        torch.testing.assert_close(a, b)
    seen = []
    train(root, tmp_path / "run", model_config("tiny"), cfg, progress=False,
          evaluate_test=False,
          on_epoch_end=lambda _: seen.append(determinism.fill_uninitialized_memory))  # fmt: skip
    assert seen == [False] and determinism.fill_uninitialized_memory is True
