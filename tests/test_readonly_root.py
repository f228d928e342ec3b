"""A data root that cannot be written (shared storage) works without flags.

The packed store then goes to the per-user cache, one folder per root, with one note saying
where; ``--store`` / ``--out`` still choose. Tests run as root, where permission bits do not
stop writes: the root is made read-only with ``chmod`` AND, when that cannot bind (uid 0), the
write probe is told so for that root only; the probe itself is checked on a file system that
refuses even root (``/proc``).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from avparse.data import store
from avparse.synthetic import generate_llp


@pytest.fixture(scope="module")
def source_root(tmp_path_factory) -> Path:
    return generate_llp(tmp_path_factory.mktemp("ro") / "root", n_train=8, n_val=4, n_test=4)


@pytest.fixture
def readonly_root(source_root: Path, tmp_path: Path, monkeypatch) -> Path:
    """A read-only copy of a small LLP root; the cache is a fresh folder of this test."""
    import shutil

    root = Path(shutil.copytree(source_root, tmp_path / "shared" / "llp"))
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / "cache"))
    modes = {}
    for path in [root, *root.rglob("*")]:
        modes[path] = path.stat().st_mode
        path.chmod(modes[path] & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    if os.geteuid() == 0:  # root writes through permission bits: tell the probe for this root
        probe = store.can_write
        ro = root.resolve()
        monkeypatch.setattr(
            store, "can_write", lambda folder: Path(folder).resolve() != ro and probe(folder)
        )
    else:
        assert not store.can_write(root)
    store._NOTED.clear()
    yield root
    for path, mode in modes.items():
        path.chmod(mode)


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_write_probe_is_honest(tmp_path: Path) -> None:
    assert store.can_write(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    assert not store.can_write(tmp_path / "missing")
    assert not store.can_write("/proc")  # refuses root too, unlike os.access
    assert os.access("/proc", os.W_OK) or os.geteuid() != 0


def test_default_store_of_a_writable_root_is_inside_it(source_root: Path) -> None:
    assert store.default_store(source_root) == source_root / "packed"


def test_readonly_root_packs_into_the_user_cache(readonly_root: Path, tmp_path: Path, cli):
    before = _files(readonly_root)
    res = cli("data", "pack", readonly_root, "--no-progress")
    assert res.code == 0, res.err
    out = store.default_store(readonly_root)
    assert out.is_relative_to(tmp_path / "cache" / "stores") and out.name == "packed"
    assert out.parent.name.startswith("llp-")
    assert (out / "manifest.json").is_file()
    notes = [line for line in res.err.splitlines() if "not writable" in line]
    assert len(notes) == 1 and str(out) in notes[0], res.err
    assert _files(readonly_root) == before  # nothing written into the root
    # another root of the same name gets another folder: the key is the absolute path
    other = tmp_path / "elsewhere" / "llp"
    other.mkdir(parents=True)
    assert store.default_store(other) == other / "packed"


def test_readonly_root_trains_and_evaluates_without_flags(
    readonly_root: Path, tmp_path: Path, cli
) -> None:
    before = _files(readonly_root)
    run = tmp_path / "run"
    res = cli("train", "--data", readonly_root, "--preset", "tiny", "--epochs", "1",
              "--no-progress", "--out", run)  # fmt: skip
    assert res.code == 0, res.err
    cached = store.default_store(readonly_root)
    assert json.loads((cached / "manifest.json").read_text())["format"] == store.FORMAT
    res = cli("evaluate", "--data", readonly_root, "--checkpoint", run / "model", "--split",
              "test", "--out", tmp_path / "eval")  # fmt: skip
    assert res.code == 0, res.err
    assert _files(readonly_root) == before


def test_store_flag_still_chooses(readonly_root: Path, tmp_path: Path, cli) -> None:
    mine = tmp_path / "mine"
    res = cli("data", "pack", readonly_root, "--out", mine, "--no-progress")
    assert res.code == 0, res.err
    assert (mine / "manifest.json").is_file()
    assert "not writable" not in res.err
    assert not (tmp_path / "cache").exists()
