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


def test_ave_predictions_are_what_the_score_used(cli, tmp_path, ave_synthetic):
    """Issue 20 item 3: ``evaluate --task ave`` writes the AVE decision (one class per clip) as
    ``predictions.tsv``, keyed by the split row, readable back, scoring exactly as metrics.json;
    no LLP-rule audio.tsv / visual.tsv. Item 15: the score table lines up."""
    from avparse.data.ave import AVEAnnotations
    from avparse.eval.ave import AVE_PREDICTIONS, ave_scores, read_ave_predictions
    from avparse.vocab import AVE

    run = tmp_path / "run"
    assert cli("train", "--data", ave_synthetic, "--task", "ave", "--out", run, *TINY).code == 0
    out = tmp_path / "eval"
    ev = cli("evaluate", "--task", "ave", "--data", ave_synthetic, "--checkpoint", run / "model",
             "--out", out)  # fmt: skip
    assert ev.code == 0, ev.err
    assert not (out / "audio.tsv").exists() and "predictions.tsv" in ev.out
    table = [line for line in ev.out.splitlines() if line.startswith(("accuracy", "acc/"))]
    assert len({len(line) for line in table}) == 1  # values end in one column
    ids, pred = read_ave_predictions(out / AVE_PREDICTIONS, AVE.names)
    clips = AVEAnnotations(ave_synthetic).split("test")
    assert ids == clips.ids and pred.shape == (len(ids), 10)
    assert all(len(set(r) - {28}) <= 1 for r in pred.tolist())  # one class per clip
    metrics = json.loads((out / "metrics.json").read_text())
    assert ave_scores(pred, clips.segment_labels, AVE.names) == pytest.approx(metrics)
    probs = np.load(out / "probs.npz")
    from avparse.eval.ave import decide_ave

    assert np.array_equal(decide_ave(probs["frame_prob"], probs["video_prob"]), pred)


def test_ave_prediction_file_round_trip_with_commas(tmp_path):
    from avparse.errors import AvparseError
    from avparse.eval.ave import read_ave_predictions, write_ave_predictions
    from avparse.vocab import AVE

    comma = next(i for i, n in enumerate(AVE.names) if "," in n)
    pred = np.array([[comma] * 5 + [28] * 5, [28] * 10])
    path = write_ave_predictions(
        tmp_path / "p.tsv", ["aaaaaaaaaaa", "aaaaaaaaaaa"], pred, AVE.names
    )
    ids, back = read_ave_predictions(path, AVE.names)
    assert ids == ["aaaaaaaaaaa"] * 2 and np.array_equal(back, pred)
    bad = tmp_path / "bad.tsv"
    bad.write_text(path.read_text().replace("\t28\tbackground", "\t3\tbackground", 1))
    with pytest.raises(AvparseError, match=r"bad\.tsv:"):
        read_ave_predictions(bad, AVE.names)


def test_roots_say_their_task(cli, tmp_path, ave_synthetic):
    """Issue 20 items 6 and 10: ``data check`` recognises an AVE root (or takes ``--task``); a
    split file missing on a root of another task names the ``--task`` that fits; an unknown
    task lists every task."""
    from avparse.data.roots import root_task

    assert root_task(ave_synthetic) == "ave" and root_task(tmp_path) is None
    checked = cli("data", "check", ave_synthetic, "--no-progress")
    assert checked.code == 0, checked.out + checked.err
    assert "(task ave)" in checked.out and "AVVP" not in checked.out
    forced = cli("data", "check", ave_synthetic, "--task", "llp", "--no-progress")
    assert forced.code == 1 and "AVVP_train.csv: missing" in forced.out
    run = tmp_path / "run"
    assert cli("train", "--data", ave_synthetic, "--task", "ave", "--out", run, *TINY).code == 0
    ev = cli("evaluate", "--data", ave_synthetic, "--checkpoint", run / "model",
             "--out", tmp_path / "eval")  # fmt: skip
    assert ev.code == 0 and "predictions.tsv" in ev.out, ev.err  # the model's own task
    llp = synthetic.generate_llp(tmp_path / "llp", n_train=8, n_val=4, n_test=4)
    assert root_task(llp) == "llp"
    wrong = cli("train", "--data", llp, "--task", "ave", "--out", tmp_path / "r2", *TINY)
    assert wrong.code == 2 and "pass --task llp" in wrong.err, wrong.err
    typo = cli("train", "--data", llp, "--task", "avee", "--out", tmp_path / "r3", *TINY)
    assert typo.code == 2 and "known: ave, llp" in typo.err, typo.err


def test_evaluate_takes_the_models_task(cli, tmp_path, ave_synthetic):
    """``evaluate`` without ``--task`` runs the model on its own task (its vocabulary); a
    ``--task`` that needs another vocabulary is one line, exit 2, nothing loaded."""
    import torch

    from avparse.errors import AvparseError
    from avparse.model.checkpoint import save_student
    from avparse.model.config import model_config
    from avparse.model.han import HAN

    torch.manual_seed(0)
    config = model_config("tiny", vocabulary="ave")
    folder = save_student(HAN(config), config, tmp_path / "model")
    ev = cli("evaluate", "--data", ave_synthetic, "--checkpoint", folder, "--out",
             tmp_path / "a", "--store", tmp_path / "store")  # fmt: skip
    assert ev.code == 0, ev.err
    assert "accuracy" in json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert f"wrote {tmp_path / 'a'}/predictions.tsv, metrics.json, probs.npz" in ev.out
    wrong = cli("evaluate", "--data", ave_synthetic, "--checkpoint", folder, "--task", "llp",
                "--out", tmp_path / "b", "--store", tmp_path / "store")  # fmt: skip
    assert wrong.code == 2 and wrong.err.count("\n") == 1, wrong.err
    assert "--task llp contradicts the model's vocabulary 'ave'" in wrong.err
    from avparse.train.tasks import model_task

    assert model_task(model_config("tiny"), None, "m") == "llp"
    assert model_task(model_config("tiny", vocabulary="ave"), "ave", "m") == "ave"
    with pytest.raises(AvparseError, match=r"m: --task unav contradicts .* 'llp'"):
        model_task(model_config("tiny"), "unav", "m")
