"""Ragged clips: padding per batch and back, against a plain per-clip loop."""

from __future__ import annotations

import numpy as np
import pytest

from avparse.data.ragged import Ragged, unpad


def _clips(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(t), 3)).astype(np.float32) for t in rng.integers(1, 9, size=7)]


def test_pad_matches_a_plain_loop() -> None:
    clips = _clips()
    r = Ragged.from_arrays(clips)
    rows = [5, 0, 3]
    out, mask = r.pad(rows, fill=-1)
    longest = max(len(clips[i]) for i in rows)
    assert out.shape == (3, longest, 3)
    for k, i in enumerate(rows):
        n = len(clips[i])
        np.testing.assert_array_equal(out[k, :n], clips[i])
        assert (out[k, n:] == -1).all()
        assert mask[k, :n].all() and not mask[k, n:].any()


def test_unpad_inverts_pad_and_take_keeps_order() -> None:
    clips = _clips(1)
    r = Ragged.from_arrays(clips)
    out, _ = r.pad(length=12)
    back = unpad(out, r.lengths)
    np.testing.assert_array_equal(back.values, r.values)
    np.testing.assert_array_equal(back.offsets, r.offsets)
    t = r.take([2, 1])
    np.testing.assert_array_equal(t[0], clips[2])
    np.testing.assert_array_equal(t[1], clips[1])


def test_bad_offsets_and_short_length_are_refused() -> None:
    with pytest.raises(ValueError):
        Ragged(np.zeros((4, 2)), np.array([0, 3]))
    with pytest.raises(ValueError):
        Ragged.from_arrays(_clips()).pad(length=1)


def test_empty() -> None:
    r = Ragged.from_arrays([], tail=(3,))
    assert len(r) == 0 and r.tail == (3,)
    out, mask = r.pad()
    assert out.shape == (0, 0, 3) and mask.shape == (0, 0)
