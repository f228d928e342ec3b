"""Training: recipe, losses, the loop through the CLI, run-folder rules, exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avparse.errors import AvparseError
from avparse.model.config import model_config
from avparse.synthetic import generate_llp
from avparse.train import losses
from avparse.train.loop import train
from avparse.train.recipe import TrainConfig, recipe
from avparse.train.tasks import TASKS, get_task


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate_llp(tmp_path_factory.mktemp("llp") / "root", n_train=24, n_val=8, n_test=8)


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(epochs=60, lr=1e-4, lr_min=1e-6, warmup=10)
    assert cfg.lr_at(1) == pytest.approx(1e-5)
    assert cfg.lr_at(9) == pytest.approx(9e-5)
    assert cfg.lr_at(10) == pytest.approx(1e-4)
    assert cfg.lr_at(60) == pytest.approx(1e-6)
    mid = 1e-6 + 0.5 * (1e-4 - 1e-6) * (1 + math.cos(math.pi * 25 / 50))
    assert cfg.lr_at(35) == pytest.approx(mid)
    from avparse.train.recipe import build_optimizer

    opt, sched = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    seen = []
    for _ in range(60):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([cfg.lr_at(e) for e in range(1, 61)])
    group = opt.param_groups[0]
    assert group["betas"] == (0.5, 0.999) and group["eps"] == 1e-8
    assert group["weight_decay"] == 1e-3


def test_presets_follow_the_table() -> None:
    assert (recipe("valor").lr, recipe("valor").lr_min, recipe("valor").seed) == (1e-4, 1e-6, 1000)
    assert (recipe("valor+").lr, recipe("valor+").seed) == (3e-4, 64)
    assert (recipe("valor++").lr, recipe("valor++").lr_min, recipe("valor++").seed) == (
        3e-4,
        3e-6,
        87,
    )
    assert recipe("han").loss == "han" and recipe("valor").batch_size == 64
    assert recipe("valor").epochs == 60 and recipe("valor").clip_grad == 1.0
    plus = model_config("valor+")
    assert (plus.d_model, plus.num_layers, plus.nhead, plus.dim_feedforward) == (256, 4, 8, 1024)
    assert model_config("valor++").audio_feature == "clap"
    assert model_config("han") == model_config("valor", {"name": "han"})


def test_losses_by_hand(han_output) -> None:
    out = han_output()
    weak = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    ha = torch.zeros(3, 10, 4)
    hv = torch.zeros(3, 10, 4)
    ha[0, 2:5, 0] = 1
    hv[1, 7, 1] = 1

    def bce(p, y):
        p = p.clamp(1e-7, 1 - 1e-7)
        return float(-(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean())

    total, parts = losses.han_loss(out, weak, guided=False)
    assert float(total) == pytest.approx(bce(out.video_prob, weak), rel=1e-5)
    assert set(parts) == {"video"}
    total, parts = losses.han_loss(out, weak)
    want = (
        bce(out.video_prob, weak)
        + bce(out.audio_prob, weak)
        + bce(out.visual_prob, 0.9 * weak + 0.05)
    )
    assert float(total) == pytest.approx(want, rel=1e-5)
    total, parts = losses.valor_loss(out, weak, ha, hv)
    seg = float(F.binary_cross_entropy_with_logits(out.frame_logits[:, :, 0], ha)) + float(
        F.binary_cross_entropy_with_logits(out.frame_logits[:, :, 1], hv)
    )
    assert float(total) == pytest.approx(bce(out.video_prob, weak) + seg, rel=1e-5)
    total, parts = losses.valor_video_loss(out, weak, ha, hv)
    va = torch.zeros(3, 4)
    va[0, 0] = 1
    vv = torch.zeros(3, 4)
    vv[1, 1] = 1
    want = bce(out.video_prob, weak) + bce(out.audio_prob, va) + bce(out.visual_prob, vv)
    assert float(total) == pytest.approx(want, rel=1e-5)


def test_train_cli_end_to_end(root: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps({"preset": "tiny", "train": {"epochs": 5, "lr": 5e-3}}))
    res = cli("train", "--data", root, "--config", config, "--epochs", "2", "--out", out,
              "--store", tmp_path / "store", "--set", "d_model=8", "--set", "han_guided=false",
              "--loss", "han", "--no-progress", "--tensorboard")  # fmt: skip
    assert res.code == 0, res.err
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert "Type@AV" in res.out and "segment" in res.out and "event" in res.out
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["preset"] == "tiny"
    assert run["train"]["epochs"] == 2 and run["train"]["lr"] == 5e-3  # flag over file
    assert run["train"]["han_guided"] is False and run["model"]["d_model"] == 8
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert {"lr", "train_loss", "train_video", "val_seg_type", "seconds"} <= set(log[0])
    assert (out / "model" / "config.json").is_file() and (
        out / "model" / "model.safetensors"
    ).is_file()
    test = json.loads((out / "test_metrics.json").read_text())
    assert len(test) == 10 and all(0 <= v <= 100 for v in test.values())
    again = cli(
        "train", "--data", root, "--preset", "tiny", "--out", out, "--store", tmp_path / "store"
    )
    assert again.code == 2 and "finished run" in again.err and again.err.count("\n") == 1
    resumed = cli("train", "--data", root, "--out", out, "--resume", "--store", tmp_path / "store",
                  "--no-progress")  # fmt: skip
    assert resumed.code == 0 and "best epoch" in resumed.out


def test_bad_options_are_one_line(root: Path, tmp_path: Path, cli) -> None:
    res = cli(
        "train", "--data", root, "--preset", "tiny", "--set", "depth=3", "--out", tmp_path / "r"
    )
    assert res.code == 2 and "unknown config field 'depth'" in res.err
    res = cli("train", "--data", root, "--preset", "tiny", "--loss", "nope", "--out", tmp_path / "r",
              "--store", tmp_path / "store")  # fmt: skip
    assert res.code == 2 and "no loss 'nope'" in res.err
    with pytest.raises(AvparseError, match="unknown task"):
        get_task("no-such-task")
    assert "llp" in TASKS and get_task("llp").selection_metric == "seg_type"


def _final_state(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoint.pt", weights_only=True)["model"]


def test_resume_is_exact(root: Path, tmp_path: Path) -> None:
    """Interrupt after epoch 1 of 2, resume, and get the uninterrupted run's weights exactly
    (dropout is on, so the saved RNG states matter)."""
    cfg = model_config("tiny", {"dropout": 0.1})
    rec = recipe("tiny", {"epochs": 2, "lr": 3e-3})
    store = tmp_path / "store"
    kwargs = {"store": store, "progress": False, "evaluate_test": False}
    full = train(root, tmp_path / "full", cfg, rec, **kwargs)

    class Stop(KeyboardInterrupt):  # Ctrl-C after epoch 1
        pass

    def interrupt(epoch: int) -> None:
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(root, tmp_path / "cut", cfg, rec, on_epoch_end=interrupt, **kwargs)
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "interrupted"
    with pytest.raises(AvparseError, match="unfinished run"):
        train(root, tmp_path / "cut", cfg, rec, **kwargs)
    resumed = train(root, tmp_path / "cut", cfg, rec, resume=True, **kwargs)
    a, b = _final_state(tmp_path / "full"), _final_state(tmp_path / "cut")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.best_epoch == full.best_epoch and resumed.best_score == full.best_score
    timing = ("seconds", "cpu_seconds")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in full.log]
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed.log] == strip


def test_valor_video_loss_and_valor_plus_plus_features(tmp_path: Path) -> None:
    root = generate_llp(tmp_path / "pp", n_train=8, n_val=4, n_test=4, features="valor++", seed=1)
    cfg = model_config("tiny", {"audio_feature": "clap", "visual_feature": "clip", "norm": "pre"})
    rec = recipe("tiny", {"epochs": 1, "loss": "valor-video", "batch_size": 4})
    result = train(root, tmp_path / "run", cfg, rec, progress=False)
    assert result.test_scores is not None and np.isfinite(list(result.test_scores.values())).all()
    assert result.log[0]["train_audio"] > 0


def test_non_finite_settings_are_refused(root: Path, tmp_path: Path, cli) -> None:
    for value in ("nan", "inf"):
        res = cli("train", "--data", root, "--preset", "tiny", "--lr", value, "--out",
                  tmp_path / "r")  # fmt: skip
        assert res.code == 2 and "lr must be a finite number" in res.err, res.err
        assert res.err.count("\n") == 1
    res = cli("train", "--data", root, "--preset", "tiny", "--set", "clip_grad=nan", "--out",
              tmp_path / "r")  # fmt: skip
    assert res.code == 2 and "clip_grad must be a finite number" in res.err
    assert not (tmp_path / "r").exists()


def test_divergence_stops_the_run_and_keeps_the_last_good_state(
    root: Path, tmp_path: Path, cli, monkeypatch
) -> None:
    """A loss that turns NaN in epoch 2 stops the run at that step: run.json says failed with
    the reason, epoch 1's checkpoint and best model stay loadable; the CLI exits 1."""
    from avparse.model.checkpoint import load_student
    from avparse.train.losses import LOSSES, Loss

    valor = LOSSES["valor"]
    calls = {"n": 0}

    def poisoned(out, batch, cfg):
        calls["n"] += 1
        total, parts = valor.fn(out, batch, cfg)
        return (total * float("nan"), parts) if calls["n"] == 5 else (total, parts)

    monkeypatch.setitem(LOSSES, "valor", Loss("valor", valor.targets, poisoned))
    out = tmp_path / "run"
    res = cli("train", "--data", root, "--preset", "tiny", "--epochs", "2", "--out", out,
              "--store", tmp_path / "store", "--no-progress")  # fmt: skip
    assert res.code == 1 and res.err.count("\n") == 1, res.err  # 24 clips / 8: 3 steps an epoch
    assert "epoch 2, step 2: the loss is not finite" in res.err and "Traceback" not in res.err
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and "epoch 2, step 2" in run["reason"]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    load_student(out / "model")  # the best model of epoch 1 is intact
    # a diverging learning rate ends the same way (BCE refuses NaN probabilities: no traceback)
    monkeypatch.setitem(LOSSES, "valor", valor)
    res = cli("train", "--data", root, "--preset", "tiny", "--lr", "1e4", "--out",
              tmp_path / "lr", "--store", tmp_path / "store", "--no-progress")  # fmt: skip
    assert res.code == 1 and "the loss is not finite" in res.err and "Traceback" not in res.err
    assert json.loads((tmp_path / "lr" / "run.json").read_text())["status"] == "failed"


def test_resume_rules_name_the_problem(root: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    base = ("--data", root, "--store", tmp_path / "store", "--no-progress")
    res = cli("train", *base, "--preset", "tiny", "--epochs", "1", "--set", "d_model=8",
              "--out", out)  # fmt: skip
    assert res.code == 0, res.err
    # repeating a saved setting is fine; changing one names it
    same = cli("train", *base, "--out", out, "--resume", "--epochs", "1")
    assert same.code == 0, same.err
    res = cli("train", *base, "--out", out, "--resume", "--epochs", "3", "--lr", "0.002")
    assert res.code == 2 and res.err.count("\n") == 1
    assert "epochs (1 -> 3)" in res.err and "lr (0.001 -> 0.002)" in res.err
    assert "d_model" not in res.err
    # --resume of a folder without a run is a mistake (a typo in --out), not a new run
    res = cli("train", *base, "--out", tmp_path / "rnu", "--resume")
    assert res.code == 2 and "no run to resume" in res.err
    assert not (tmp_path / "rnu").exists()


def test_output_path_errors_are_one_line(root: Path, tmp_path: Path, cli) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        res = cli("train", "--data", root, "--preset", "tiny", "--out", out, "--no-progress")
        assert res.code == 2 and res.err.count("\n") == 1 and "output folder" in res.err, res.err
    res = cli("evaluate", "--data", root, "--checkpoint", "x.pt", "--preset", "tiny", "--out",
              afile)  # fmt: skip
    assert res.code == 2 and "output folder is an existing file" in res.err


def test_default_run_folder_follows_the_config_preset(
    root: Path, tmp_path: Path, cli, monkeypatch
) -> None:
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps({"preset": "tiny", "train": {"epochs": 1}}))
    monkeypatch.chdir(tmp_path)
    res = cli("train", "--data", root, "--config", config, "--store", tmp_path / "store",
              "--quiet")  # fmt: skip
    assert res.code == 0, res.err
    assert (tmp_path / "runs" / "tiny" / "run.json").is_file()
    assert not (tmp_path / "runs" / "valor").exists()
    assert "\r" not in res.err and "epoch 1/1" not in res.out  # not a terminal; --quiet
    assert "Type@AV" in res.out


def test_tasks_declare_targets_and_splits(root: Path) -> None:
    """The loop asks the task, never its name: losses follow from the targets a task provides."""
    llp, ave = get_task("llp"), get_task("ave")
    assert llp.losses == ("han", "valor", "valor-video", "uwav")
    assert "uwav" in ave.losses
    assert "supervised" in ave.losses
    assert llp.has_split(root, "test") and not llp.has_split(root / "nowhere", "test")
    with pytest.raises(AvparseError, match="task 'llp' has no loss 'supervised'"):
        llp.loss("supervised")


def test_split_kept_on_the_device_trains_identically(root: Path, tmp_path: Path, monkeypatch):
    """The GPU path (train split resident on the device, batches gathered there) gives the same
    weights as the memory-map path; forced on the CPU here, where the two must agree bit for bit."""
    from avparse.train import loop

    cfg, rec = model_config("tiny"), recipe("tiny", {"epochs": 1})
    kwargs = {"store": tmp_path / "store", "progress": False, "evaluate_test": False}
    train(root, tmp_path / "maps", cfg, rec, **kwargs)
    kept = []
    monkeypatch.setattr(loop, "keep_on_device", lambda run, data: kept.append(1) or True)
    train(root, tmp_path / "kept", cfg, rec, **kwargs)
    assert kept, "the resident path was not taken"
    a, b = _final_state(tmp_path / "maps"), _final_state(tmp_path / "kept")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refused_runs_leave_nothing_and_errors_record_failed(
    root: Path, tmp_path: Path, cli, monkeypatch
) -> None:
    """Issue 20 items 4, 7, 13: widths that do not fit the data and a missing extra are refused
    in one line before the run folder is written (the retry is not blocked); a config value of
    the wrong type names key, value and type; an unexpected error mid-run records failed."""
    import sys

    store = ("--store", tmp_path / "store", "--no-progress")
    out = tmp_path / "run"
    res = cli("train", "--data", root, "--preset", "tiny", "--set", "audio_dim=64", "--out", out,
              *store)  # fmt: skip
    assert res.code == 2 and res.err.count("\n") == 1, res.err
    assert "audio input is 64-d but vggish features are 128-d" in res.err
    assert not out.exists() and not (tmp_path / "store").exists()  # before packing
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    res = cli("train", "--data", root, "--preset", "tiny", "--out", out, "--tensorboard", *store)
    assert res.code == 2 and "tensorboard" in res.err and not out.exists(), res.err
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard")
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps({"preset": "tiny", "train": {"epochs": "x"}}))
    res = cli("train", "--data", root, "--config", config, "--out", out, *store)
    assert res.code == 2 and "'epochs' is 'x' (a string); expected an integer" in res.err
    import avparse.train.loop as loop

    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(loop, "train_one_epoch", broken)
    res = cli("train", "--data", root, "--preset", "tiny", "--out", out, *store)
    assert res.code == 1 and "unexpected RuntimeError" in res.err
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and "mat1 and mat2" in run["reason"]


def test_short_runs_shorten_a_long_warmup(root: Path, tmp_path: Path, cli) -> None:
    """Issue 20 item 8: a preset's warm-up longer than a quarter of the run is shortened with a
    note; one the user gives is kept."""
    from avparse.train.recipe import fit_warmup, resolve_configs

    notes: list[str] = []
    _, cfg, _ = resolve_configs("valor", flags={"epochs": 8}, notes=notes)
    assert cfg.warmup == 2 and "warm-up shortened from 10 to 2 epochs" in notes[0]
    assert cfg.lr_at(8) < cfg.lr_at(3) < cfg.lr  # the run decays
    _, kept, _ = resolve_configs("valor", flags={"epochs": 8}, sets=["warmup=5"])
    assert kept.warmup == 5
    assert fit_warmup(recipe("tiny"))[1] is None  # 1 warm-up epoch of 3 stays
    out = tmp_path / "run"
    res = cli("train", "--data", root, "--preset", "valor", "--epochs", "4", "--out", out,
              "--set", "d_model=8", "--set", "nhead=2", "--set", "dim_feedforward=16",
              "--store", tmp_path / "store", "--no-progress")  # fmt: skip
    assert res.code == 0, res.err
    assert "note: warm-up shortened from 10 to 1 epoch (" in res.err
    assert json.loads((out / "run.json").read_text())["train"]["warmup"] == 1
