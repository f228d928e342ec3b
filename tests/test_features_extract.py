"""Feature extraction helpers: which presets can parse video, short-window CLAP map alignment."""

from __future__ import annotations

import numpy as np
import pytest

from avparse.errors import AvparseError
from avparse.features.extract import check_extractable, fit_token_map


def test_only_the_valor_plus_plus_family_is_extractable() -> None:
    check_extractable({"audio": "clap", "visual": "clip", "motion": "r2plus1d_18"}, "m")
    with pytest.raises(AvparseError, match="vggish/res152") as info:
        check_extractable({"audio": "vggish", "visual": "res152", "motion": "r2plus1d_18"}, "m")
    assert "avparse evaluate" in str(info.value) and "\n" not in str(info.value)


def test_fit_token_map_keeps_the_window_part_of_the_time_axis() -> None:
    time = np.tile(np.arange(32, dtype=np.float32), 2)  # token j at time column j % 32
    token_map = np.stack([time, -time], axis=1)  # (64, 2)
    assert fit_token_map(token_map, 10.0) is token_map
    fitted = fit_token_map(token_map, 4.0)
    assert fitted.shape == (64, 2) and fitted.dtype == np.float32
    cols = fitted[:32, 0]
    assert np.all(np.diff(cols) >= 0)  # still in time order
    assert cols[0] == 0.0 and cols[-1] <= 4.0 / 10.0 * 32  # only the first 4 s of the 10 s axis
    assert np.allclose(fitted[32:, 0], cols) and np.allclose(fitted[:, 1], -fitted[:, 0])
    with pytest.raises(ValueError):
        fit_token_map(np.zeros((256, 2), np.float32), 4.0)
