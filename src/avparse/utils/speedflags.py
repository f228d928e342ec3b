"""``--precision`` and ``--compile`` of ``avparse train`` / ``evaluate`` (one definition)."""

from __future__ import annotations

import argparse

from avparse.utils.precision import PRECISIONS


def add_speed_flags(parser: argparse.ArgumentParser, *, saved: bool = False) -> None:
    """The two flags; ``saved``: they are training settings kept in the run folder."""
    if saved:
        what = (
            "arithmetic of the forward passes: float32 (default) or bfloat16 autocast (weights, "
            "gradients and optimiser state stay float32; fast where the CPU or GPU has bfloat16 "
            "units, results differ slightly; see docs/performance.md); kept in the run's "
            "settings (the preset's, float32, when omitted)"
        )
    else:
        what = (
            "arithmetic of the forward passes: float32 or bfloat16 autocast (fast where the CPU "
            "or GPU has bfloat16 units; scores differ slightly; see docs/performance.md); "
            "default: the precision a run folder's model (RUN/model) was trained in, else float32"
        )
    parser.add_argument("--precision", choices=PRECISIONS, default=None, help=what)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="run the model through torch.compile (a one-line note and the uncompiled model "
        "where the platform cannot compile; the first steps pay the compilation)"
        + ("; kept in the run's settings" if saved else ""),
    )
