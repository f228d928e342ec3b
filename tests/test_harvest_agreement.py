"""Training refuses harvests whose positives lie outside the clips' weak labels (LLP and AVE)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from avparse import synthetic
from avparse.data.agreement import HarvestMismatchError
from avparse.data.layout import HARVEST_FOLDERS

TARGETS = ("weak", "harvest_audio", "harvest_visual")


@pytest.fixture(scope="module")
def llp_source(tmp_path_factory) -> Path:
    return synthetic.generate_llp(
        tmp_path_factory.mktemp("llp") / "root", n_train=8, n_val=3, n_test=3
    )


def _shift_columns(folder: Path) -> None:
    """As a harvest written with another class order: every file's columns rolled by one."""
    for path in folder.glob("*.npy"):
        np.save(path, np.roll(np.load(path), 1, axis=1))


def test_llp_training_refuses_then_accepts_knowingly(llp_source: Path, tmp_path: Path, cli):
    from avparse.model.config import model_config
    from avparse.train.tasks import LoadRequest, get_task

    root = Path(shutil.copytree(llp_source, tmp_path / "root"))
    model = model_config("tiny")
    request = LoadRequest(root, tmp_path / "store", "train", model, TARGETS)
    assert get_task("llp").load(request).targets["harvest_audio"].shape == (8, 10, 25)
    _shift_columns(root / HARVEST_FOLDERS["audio"])
    with pytest.raises(HarvestMismatchError) as err:
        get_task("llp").load(request)
    message = str(err.value)
    assert message.startswith(f"{root / HARVEST_FOLDERS['audio']}: ") and "\n" not in message
    assert "lie outside the clips' weak labels, e.g. " in message
    assert message.endswith("to use it anyway: --set accept_harvest_mismatch=true")
    accepted = LoadRequest(root, tmp_path / "store", "train", model, TARGETS,
                           accept_harvest_mismatch=True)  # fmt: skip
    assert get_task("llp").load(accepted).targets["harvest_audio"].shape == (8, 10, 25)
    args = ("train", "--data", root, "--preset", "tiny", "--epochs", "1", "--out", tmp_path / "r")
    result = cli(*args)
    assert result.code == 2 and "accept_harvest_mismatch" in result.err
    result = cli(*args, "--set", "accept_harvest_mismatch=true")
    assert result.code == 0, result.err


def test_ave_rows_sharing_an_id_are_measured_against_the_ids_tags(tmp_path: Path):
    from avparse.data.ave import AVEAnnotations
    from avparse.model.config import model_config
    from avparse.train.tasks import LoadRequest, get_task

    root = synthetic.generate_ave(tmp_path / "ave", n_train=12, n_val=4, n_test=4, seed=1)
    model = model_config("tiny", {"vocabulary": "ave"})
    request = LoadRequest(root, tmp_path / "store", "train", model, TARGETS)
    get_task("ave").load(request)  # what the generator writes agrees with the tags
    clips = AVEAnnotations(root).split("train")
    folder = root / HARVEST_FOLDERS["visual"]
    harvest = np.zeros((10, 28), np.float32)
    harvest[:, int(np.flatnonzero(~clips.labels[0])[0])] = 1
    np.save(folder / f"{clips.ids[0]}.npy", harvest)
    with pytest.raises(HarvestMismatchError, match=f"e.g. {clips.ids[0]}"):
        get_task("ave").load(request)
