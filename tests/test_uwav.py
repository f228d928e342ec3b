"""UWAV objective: each part against a hand computation on a tiny batch, and seeded mixing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avparse.errors import AvparseError
from avparse.model.config import model_config
from avparse.model.han import HAN
from avparse.train import losses, uwav
from avparse.train.losses import LOSSES
from avparse.train.recipe import TrainConfig


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _bce(z: float, y: float) -> float:
    """BCE of a logit against a (soft) target, written out."""
    p = _sig(z)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_soft_targets_by_hand() -> None:
    margins = [[2.0, -1.0, 0.0], [0.5, 3.0, -4.0]]  # (T=2, C=3); class 2 is outside the weak set
    weak = torch.tensor([[1.0, 1.0, 0.0]])
    stored = torch.tensor(
        [[[_sig(m) if c < 2 else 0.0 for c, m in enumerate(row)] for row in margins]]
    )
    for t in (2.0, 1.0, 0.5):
        got = uwav.soft_targets(stored, weak, t)
        want = [[_sig(m / t) if c < 2 else 0.0 for c, m in enumerate(row)] for row in margins]
        assert got.dtype == torch.float32
        assert got[0].flatten().tolist() == pytest.approx(np.ravel(want).tolist(), abs=1e-6)
    torch.testing.assert_close(uwav.soft_targets(stored, weak, 1.0), stored, rtol=0, atol=1e-7)


def test_soft_targets_saturate_safely() -> None:
    weak = torch.tensor([[1.0, 0.0]])
    stored = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # margin beyond float32 / far below
    got = uwav.soft_targets(stored, weak, 2.0)
    assert torch.isfinite(got).all()
    assert 0.9997 < float(got[0, 0, 0]) < 1.0  # read as margin ~16.6, halved
    assert 0.0 <= float(got[0, 1, 0]) < 1e-15
    assert float(got[0, 0, 1]) == 0.0 and float(got[0, 1, 1]) == 0.0  # outside: exactly 0


def test_class_weights_by_hand() -> None:
    hard = np.zeros((2, 10, 4), np.uint8)
    hard[0, :3, 0] = 1
    hard[1, 5:, 2] = 1  # 8 positives of 80 entries
    f = uwav.positive_fraction(hard, chunk=1)
    assert f == pytest.approx(0.1)
    assert TrainConfig(loss="uwav").uwav_weights == "paper"  # eq. 18-19 (the uwav presets: code)
    paper = TrainConfig(loss="uwav", uwav_weights="paper")
    assert paper.uwav_w == 0.5
    assert uwav.class_weights(f, 4, paper) == pytest.approx((0.5 * 0.9, 0.1))
    code = TrainConfig(loss="uwav", uwav_weights="code", uwav_w=0.25)
    assert uwav.class_weights(f, 4, code) == pytest.approx((4 * 0.25 * 0.9, 4 * 0.1))
    assert uwav.class_weights(f, 4, TrainConfig(uwav_weights="fixed")) == (7.0, 1.0)
    visual = np.zeros_like(hard)
    visual[1, 0, 3] = 1  # 1 of 80
    derived = uwav.derive_targets({"harvest_audio": hard, "harvest_visual": visual}, code)
    table = derived[uwav.WEIGHTS_TARGET]
    assert table.shape == (2, 2, 2) and np.array_equal(table[0], table[1])
    assert table[0].ravel().tolist() == pytest.approx([4 * 0.25 * 0.9, 0.4, 0.25 * 79 / 20, 0.05])


def test_reweighted_segment_loss_by_hand() -> None:
    logits = torch.tensor([[[1.0, -2.0], [0.0, 0.5]]])  # (B=1, T=2, C=2)
    target = torch.tensor([[[0.8, 0.0], [0.3, 0.0]]])
    weak = torch.tensor([[1.0, 0.0]])
    entries = [(1.0, 0.8, 3.0), (-2.0, 0.0, 0.25), (0.0, 0.3, 3.0), (0.5, 0.0, 0.25)]
    want = sum(w * _bce(z, y) for z, y, w in entries) / 4
    got = uwav.segment_loss(logits, target, weak, (3.0, 0.25))
    assert float(got) == pytest.approx(want, rel=1e-6)
    plain = sum(_bce(z, y) for z, y, _ in entries) / 4
    assert float(uwav.segment_loss(logits, target, weak, None)) == pytest.approx(plain, rel=1e-6)


def test_mixup_loss_by_hand() -> None:
    logits = torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[-0.5, 0.5], [0.0, 3.0]]])  # (2, 2, 2)
    labels = torch.tensor([[[1.0, 0.0], [0.6, 0.0]], [[0.0, 0.2], [0.0, 1.0]]])
    lam, perm = 0.3, torch.tensor([2, 0, 3, 1])
    z = logits.reshape(4, 2).tolist()
    y = labels.reshape(4, 2).tolist()
    total_a = total_b = 0.0
    for i, j in enumerate(perm.tolist()):
        for c in range(2):
            mix = lam * z[i][c] + (1 - lam) * z[j][c]
            total_a += _bce(mix, y[i][c])
            total_b += _bce(mix, y[j][c])
    want = lam * total_a / 8 + (1 - lam) * total_b / 8
    assert float(uwav.mixup_loss(logits, labels, lam, perm)) == pytest.approx(want, rel=1e-6)


def test_mixing_logits_is_the_classifier_on_mixed_encoder_features() -> None:
    """``fc_prob`` is affine: the mix of segment logits is the classifier of the mixed features,
    for the value and for every gradient."""
    torch.manual_seed(0)
    cfg = model_config("tiny")
    model = HAN(cfg).eval()
    feats: dict[str, torch.Tensor] = {}
    model.hat_encoder.register_forward_hook(lambda _m, _i, o: feats.update(audio=o[0], visual=o[1]))
    b = 3
    inputs = (torch.randn(b, 10, 128), torch.randn(b, 80, 2048), torch.randn(b, 10, 512))
    labels = torch.rand(b, 10, cfg.num_classes)
    lam, perm = 0.37, torch.randperm(b * 10, generator=torch.Generator().manual_seed(1))
    for i, m in enumerate(("audio", "visual")):
        model.zero_grad()
        out = model(*inputs)
        ours = uwav.mixup_loss(out.frame_logits[:, :, i], labels, lam, perm)
        ours.backward()
        ours_grad = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.zero_grad()
        out = model(*inputs)
        f = feats[m].reshape(b * 10, -1)
        mixed = model.fc_prob(lam * f + (1 - lam) * f[perm])
        y = labels.reshape(b * 10, -1)
        theirs = lam * torch.nn.functional.binary_cross_entropy_with_logits(mixed, y) + (
            1 - lam
        ) * torch.nn.functional.binary_cross_entropy_with_logits(mixed, y[perm])
        theirs.backward()
        theirs_grad = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-5)
        assert len(ours_grad) == len(theirs_grad)
        for g1, g2 in zip(ours_grad, theirs_grad, strict=True):
            torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)


def test_mixup_draws_follow_the_seeded_generator() -> None:
    torch.manual_seed(5)
    first = [uwav.draw_mixup(20, 1.7) for _ in range(3)]
    torch.manual_seed(5)
    again = [uwav.draw_mixup(20, 1.7) for _ in range(3)]
    for (l1, p1), (l2, p2) in zip(first, again, strict=True):
        assert l1 == l2 and p1.equal(p2)
    assert len({lam for lam, _ in first}) == 3  # the stream advances
    assert all(0.0 < lam < 1.0 for lam, _ in first)
    state = torch.get_rng_state()
    lam, perm = uwav.draw_mixup(20, 0.0)
    assert lam == 1.0 and sorted(perm.tolist()) == list(range(20))
    torch.set_rng_state(state)
    assert uwav.draw_mixup(20, 0.0)[1].equal(perm)


def test_binary_uwav_is_valor_and_parts_add_up(han_output) -> None:
    out = han_output(2, 3)
    weak = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    g = torch.Generator().manual_seed(3)
    batch = {"weak": weak}
    for m in ("audio", "visual"):
        batch[f"harvest_{m}"] = (torch.rand(2, 10, 3, generator=g) > 0.5).float() * weak[:, None]
        batch[f"soft_{m}"] = torch.rand(2, 10, 3, generator=g) * weak[:, None]
    table = [[2.0, 0.5], [3.0, 0.1]]  # (w_pos, w_neg) of audio, visual
    batch[uwav.WEIGHTS_TARGET] = torch.tensor([table, table])
    assert set(batch) == {*uwav.TARGETS, uwav.WEIGHTS_TARGET} == set(LOSSES["uwav"].batch_keys)

    off = TrainConfig(loss="uwav", uwav_soft=False, uwav_reweight=False, uwav_mixup=False)
    total, parts = losses.uwav_loss(out, batch, off)
    valor, _ = losses.valor_loss(out, weak, batch["harvest_audio"], batch["harvest_visual"])
    assert float(total) == pytest.approx(float(valor), rel=1e-6)

    opts = TrainConfig(loss="uwav")
    assert (opts.uwav_temperature, opts.uwav_alpha) == (2.0, 1.7)
    torch.manual_seed(11)
    total, parts = losses.uwav_loss(out, batch, opts)
    assert set(parts) == {"video", "audio", "visual", "audio_mixup", "visual_mixup"}
    assert float(total) == pytest.approx(sum(float(v) for v in parts.values()), rel=1e-6)
    torch.manual_seed(11)
    want = float(parts["video"])
    for i, m in enumerate(("audio", "visual")):
        target = uwav.soft_targets(batch[f"soft_{m}"], weak, 2.0)
        seg = uwav.segment_loss(out.frame_logits[:, :, i], target, weak, tuple(table[i]))
        lam, perm = uwav.draw_mixup(20, 1.7)
        want += float(seg) + float(uwav.mixup_loss(out.frame_logits[:, :, i], target, lam, perm))
    assert float(total) == pytest.approx(want, rel=1e-6)

    ceiled = TrainConfig(loss="uwav", uwav_reweight=False, uwav_ceil=True)
    torch.manual_seed(11)
    _, parts = losses.uwav_loss(out, batch, ceiled)
    torch.manual_seed(11)
    lam, perm = uwav.draw_mixup(20, 1.7)
    broadcast = weak[:, None, :].expand(2, 10, 3)  # ceil of a soft label is the weak label
    want_mix = uwav.mixup_loss(out.frame_logits[:, :, 0], broadcast, lam, perm)
    assert float(parts["audio_mixup"]) == pytest.approx(float(want_mix), rel=1e-6)


def test_settings_are_validated() -> None:
    with pytest.raises(AvparseError, match="uwav_weights"):
        TrainConfig(uwav_weights="inverse")
    with pytest.raises(AvparseError, match="uwav_temperature"):
        TrainConfig(uwav_temperature=0.0)
    with pytest.raises(AvparseError, match="uwav_alpha"):
        TrainConfig(uwav_alpha=float("nan"))
    with pytest.raises(AvparseError, match="uwav_w "):
        TrainConfig(uwav_w=-1.0)
    assert TrainConfig(uwav_alpha=0.0).uwav_alpha == 0.0


# ---------------------------------------------------------------- training with --loss uwav


def _add_soft_labels(root: Path, seed: int = 0) -> Path:
    """Soft labels consistent with the root's hard harvests (``soft > 0.5`` exactly where hard),
    0 outside the weak labels, as a harvest writes them."""
    from avparse.data.layout import HARVEST_FOLDERS, SOFT_HARVEST_FOLDERS

    rng = np.random.default_rng(seed)
    for m, folder in HARVEST_FOLDERS.items():
        soft_dir = root / SOFT_HARVEST_FOLDERS[m]
        soft_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted((root / folder).glob("*.npy")):
            hard = np.load(path)
            u = rng.uniform(0.05, 0.45, size=hard.shape)
            soft = np.where(hard > 0, 1 - u, u).astype(np.float32)
            np.save(soft_dir / path.name, soft * hard.any(axis=0, keepdims=True))
    return root


@pytest.fixture(scope="module")
def soft_root(tmp_path_factory) -> Path:
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path_factory.mktemp("uwav") / "root", n_train=24, n_val=8, n_test=8)
    return _add_soft_labels(root)


def test_train_with_uwav_loss_through_the_cli(soft_root: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    res = cli("train", "--data", soft_root, "--preset", "tiny", "--loss", "uwav", "--epochs", "2",
              "--out", out, "--store", tmp_path / "store", "--set", "uwav_weights=paper",
              "--set", "uwav_temperature=1.5", "--no-progress")  # fmt: skip
    assert res.code == 0, res.err
    run = json.loads((out / "run.json").read_text())
    assert run["train"]["loss"] == "uwav" and run["train"]["uwav_weights"] == "paper"
    assert run["train"]["uwav_temperature"] == 1.5
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {"train_video", "train_audio", "train_visual", "train_audio_mixup"} <= set(log[0])
    off = cli("train", "--data", soft_root, "--preset", "tiny", "--loss", "uwav", "--epochs", "1",
              "--out", tmp_path / "off", "--store", tmp_path / "store", "--no-progress",
              "--set", "uwav_mixup=false", "--set", "uwav_soft=false")  # fmt: skip
    assert off.code == 0, off.err
    log = json.loads((tmp_path / "off" / "log.jsonl").read_text().splitlines()[0])
    assert "train_audio_mixup" not in log and "train_audio" in log


def test_root_without_soft_labels_is_one_line(tmp_path: Path, cli) -> None:
    import shutil

    from avparse.data.layout import SOFT_HARVEST_FOLDERS
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=8, n_val=4, n_test=4)
    for folder in SOFT_HARVEST_FOLDERS.values():  # synthetic roots have them, as harvests do
        shutil.rmtree(root / folder)
    res = cli("train", "--data", root, "--preset", "tiny", "--loss", "uwav", "--out",
              tmp_path / "run", "--store", tmp_path / "store", "--no-progress")  # fmt: skip
    assert res.code == 2 and res.err.count("\n") == 1, res.err
    assert "segment_soft_labels" in res.err and "harvest" in res.err


def test_uwav_resume_is_exact(soft_root: Path, tmp_path: Path) -> None:
    """Mixing draws come from the checkpointed generator: an interrupted and resumed run ends
    with the uninterrupted run's weights, bit for bit."""
    from avparse.train.loop import train
    from avparse.train.recipe import recipe

    cfg = model_config("tiny", {"dropout": 0.1})
    rec = recipe("tiny", {"epochs": 2, "lr": 3e-3, "loss": "uwav"})
    kwargs = {"store": tmp_path / "store", "progress": False, "evaluate_test": False}
    train(soft_root, tmp_path / "full", cfg, rec, **kwargs)

    class Stop(Exception):
        pass

    def interrupt(epoch: int) -> None:
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(soft_root, tmp_path / "cut", cfg, rec, on_epoch_end=interrupt, **kwargs)
    train(soft_root, tmp_path / "cut", cfg, rec, resume=True, **kwargs)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    other = recipe("tiny", {"epochs": 2, "lr": 3e-3, "loss": "uwav", "uwav_alpha": 0.5})
    train(soft_root, tmp_path / "alpha", cfg, other, **kwargs)
    c = torch.load(tmp_path / "alpha" / "checkpoint.pt", weights_only=True)["model"]
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the draws matter


def test_train_ave_with_uwav_loss(tmp_path: Path, cli) -> None:
    from avparse.synthetic import generate_ave

    root = _add_soft_labels(generate_ave(tmp_path / "ave", n_train=16, n_val=6, n_test=6, seed=1))
    out = tmp_path / "run"
    res = cli("train", "--task", "ave", "--data", root, "--preset", "tiny", "--loss", "uwav",
              "--epochs", "1", "--out", out, "--no-progress", "--set", "uwav_ceil=true")  # fmt: skip
    assert res.code == 0, res.err
    log = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert log["train_visual_mixup"] > 0 and "val_accuracy" in log


def test_uwav_presets_follow_the_published_script() -> None:
    from avparse.train.recipe import recipe

    for name, audio in (("uwav", "vggish"), ("uwav++", "clap")):
        m, r = model_config(name), recipe(name)
        assert (m.d_model, m.num_layers, m.nhead, m.dim_feedforward) == (512, 5, 16, 2048)
        assert m.audio_feature == audio and m.norm == "post" and m.dropout == 0.1
        assert (m.arch, m.proj_layers, m.mmil_layers) == ("uwav", 1, 1)  # UWAV's network
        assert (r.loss, r.epochs, r.lr, r.lr_min, r.warmup) == ("uwav", 80, 1e-4, 5e-6, 10)
        assert (r.betas, r.weight_decay, r.eps, r.batch_size) == ((0.9, 0.999), 1e-4, 1e-8, 64)
        assert (r.seed, r.clip_grad, r.uwav_weights, r.uwav_w) == (20000, 1.0, "code", 0.5)
        assert (r.uwav_alpha, r.uwav_temperature) == (1.7, 2.0)
        assert r.uwav_soft and r.uwav_reweight and r.uwav_mixup and not r.uwav_ceil
