"""The ``ave`` task end to end through the CLI: synthetic AVE and real annotations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avparse import synthetic

TINY = ("--preset", "tiny", "--epochs", "1", "--no-progress", "--overwrite")


@pytest.fixture(scope="module")
def ave_synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("ave") / "root"
    return synthetic.generate_ave(root, n_train=16, n_val=6, n_test=6, seed=1)


@pytest.mark.parametrize("loss", ["han", "valor", "supervised"])
def test_train_and_evaluate(cli, tmp_path, ave_synthetic, loss):
    run = tmp_path / "run"
    result = cli(
        "train", "--data", ave_synthetic, "--task", "ave", "--loss", loss, "--out", run, *TINY
    )
    assert result.code == 0, result.err
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["num_classes"] == 28 and config["vocabulary"] == "ave"
    test = json.loads((run / "test_metrics.json").read_text())
    assert 0.0 <= test["accuracy"] <= 100.0
    ev = cli("evaluate", "--task", "ave", "--data", ave_synthetic, "--checkpoint", run / "model",
             "--out", tmp_path / "eval")  # fmt: skip
    assert ev.code == 0, ev.err
    assert "accuracy" in ev.out and "acc/background" in ev.out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(test["accuracy"])


def test_load_restricts_harvest_to_row_class(tmp_path, ave_synthetic):
    from avparse.data.ave import AVEAnnotations
    from avparse.model.config import model_config
    from avparse.train.losses import get_loss
    from avparse.train.tasks import LoadRequest, get_task

    task = get_task("ave")
    model = model_config("tiny", {"vocabulary": "ave"})
    targets = get_loss("valor").targets
    req = LoadRequest(ave_synthetic, tmp_path / "store", "train", model, targets)
    data = task.load(req)
    clips = AVEAnnotations(ave_synthetic).split("train")
    assert data.filenames == clips.ids
    assert data.inputs["visual"].shape == (16, 10, 2048)  # the store pools ResNet-152 frames
    for key in ("harvest_audio", "harvest_visual"):
        h = data.targets[key]
        assert h.shape == (16, 10, 28) and not (h * (1 - clips.labels[:, None, :])).any()
    assert np.array_equal(data.targets["segment_labels"], clips.segment_labels)
    # A changed source file rebuilds the gathered array.
    clip = clips.ids[0]
    path = ave_synthetic / "feats/vggish" / f"{clip}.npy"
    original = np.load(path)
    try:
        np.save(path, np.zeros_like(original))
        again = task.load(req)
        assert not again.inputs["audio"][0].any()
    finally:
        np.save(path, original)


def test_evaluate_rejects_llp_model(tmp_path, ave_synthetic):
    from avparse.errors import AvparseError
    from avparse.model.config import model_config
    from avparse.train.tasks import LoadRequest, get_task

    req = LoadRequest(ave_synthetic, tmp_path / "store", "test", model_config("tiny"))
    with pytest.raises(AvparseError, match="needs the AVE vocabulary"):
        get_task("ave").load(req)


def test_real_annotations_with_synthetic_features(cli, tmp_path, ave_root):
    root = synthetic.generate_ave(tmp_path / "real", annotations=ave_root, per_split=6, seed=0)
    run = tmp_path / "run"
    result = cli("train", "--data", root, "--task", "ave", "--loss", "valor", "--out", run, *TINY)
    assert result.code == 0, result.err
    assert "accuracy" in json.loads((run / "test_metrics.json").read_text())
