"""``avparse evaluate``: both checkpoint formats, the four outputs, scores equal to the TSVs'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avparse.data.llp import LLPAnnotations, read_dense
from avparse.eval.metrics import llp_scores
from avparse.model.checkpoint import save_student
from avparse.model.config import model_config
from avparse.model.han import HAN
from avparse.synthetic import generate_llp


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate_llp(tmp_path_factory.mktemp("llp") / "root", n_train=4, n_val=10, n_test=6)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = model_config("tiny")
    model = HAN(config)
    with torch.no_grad():  # push some probabilities over 0.5 so there are events to write
        model.fc_prob.bias.add_(2.0)
    folder = tmp_path_factory.mktemp("model") / "m"
    save_student(model, config, folder)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, folder.parent / "best.pt")
    return folder


def test_evaluate_model_folder(root: Path, model_dir: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "eval"
    res = cli("evaluate", "--data", root, "--checkpoint", model_dir, "--split", "val", "--out", out,
              "--store", tmp_path / "store")  # fmt: skip
    assert res.code == 0, res.err
    assert "Type@AV" in res.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
                             "evt_a", "evt_v", "evt_av", "evt_type", "evt_event"]  # fmt: skip
    with np.load(out / "probs.npz") as probs:
        names = list(probs["names"])
        assert probs["frame_prob"].shape == (10, 10, 2, 25)
        assert probs["video_prob"].shape == (10, 25)
    ann = LLPAnnotations(root)
    assert names == ann.weak("val").filenames
    # the TSVs hold exactly the decided events: scoring them gives metrics.json
    pred_a = read_dense(out / "audio.tsv", names)
    pred_v = read_dense(out / "visual.tsv", names)
    assert pred_a.any() and pred_v.any()
    true_a, true_v = ann.dense("val")
    assert llp_scores(pred_a, pred_v, true_a, true_v) == pytest.approx(metrics)


def test_evaluate_published_pt_needs_preset(
    root: Path, model_dir: Path, tmp_path: Path, cli
) -> None:
    pt = model_dir.parent / "best.pt"
    store = tmp_path / "store"
    res = cli(
        "evaluate", "--data", root, "--checkpoint", pt, "--out", tmp_path / "a", "--store", store
    )
    assert res.code == 2 and "pass --preset" in res.err
    res = cli("evaluate", "--data", root, "--checkpoint", pt, "--preset", "tiny", "--out",
              tmp_path / "b", "--store", store)  # fmt: skip
    assert res.code == 0, res.err
    folder = cli("evaluate", "--data", root, "--checkpoint", model_dir, "--out", tmp_path / "c",
                 "--store", store)  # fmt: skip
    assert folder.code == 0
    a = json.loads((tmp_path / "b" / "metrics.json").read_text())
    b = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert a == b
    res = cli("evaluate", "--data", root, "--checkpoint", pt, "--preset", "tiny", "--set",
              "d_model=8", "--out", tmp_path / "d", "--store", store)  # fmt: skip
    assert res.code == 2 and "fc_a.weight" in res.err and res.err.count("\n") == 1


def test_preset_with_a_model_folder_is_an_error(
    root: Path, model_dir: Path, tmp_path: Path, cli
) -> None:
    """A model folder brings its own config: --preset / --set are not silently ignored."""
    for extra in (("--preset", "valor"), ("--set", "d_model=8")):
        res = cli("evaluate", "--data", root, "--checkpoint", model_dir, "--out",
                  tmp_path / "e", *extra)  # fmt: skip
        assert res.code == 2 and "a model folder brings its own config" in res.err, res.err
        assert res.err.count("\n") == 1
    assert not (tmp_path / "e").exists()


def test_evaluate_checkpoint_mistakes_are_named(
    root: Path, model_dir: Path, tmp_path: Path, cli, monkeypatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    res = cli("evaluate", "--data", root, "--checkpoint", "nosuchdir/model", "--out",
              tmp_path / "a")  # fmt: skip
    assert res.code == 2 and res.err.count("\n") == 1
    # 0.1 said only that the hub was offline, as if the user had meant a hub id
    assert "nosuchdir/model: no such file or folder" in res.err
