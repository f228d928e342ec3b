"""``avparse demo``: the synthetic LLP-like benchmark, in minutes on a CPU.

Generates (or reuses) a synthetic data root under ``OUT/data`` and trains the same network on
the weak labels alone (HAN), with the harvests of a fused teacher (VALOR fused), with the
harvests of modality-independent teachers (VALOR) and with those as UWAV's soft targets
(``--loss uwav``), all on VALOR's network (``--uwav-network`` adds UWAV's objective on UWAV's
network); prints their ten test scores side by side,
writes ``OUT/results.json`` and a timeline picture of one test clip per method. Re-running
with the same flags reuses everything already done (see :mod:`avparse.demo`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avparse.demo import DemoConfig
from avparse.utils.precision import PRECISIONS
from avparse.utils.progress import add_progress_flags, progress_enabled

_DEFAULTS = DemoConfig()


def add_data_flags(parser: argparse.ArgumentParser, *, unav: bool = False) -> None:
    """The demo's data flags (sizes, feature set, seed), shared with ``avparse data synth``.

    ``unav``: also the UnAV-like world's feature sets; sizes and features are then absent from
    the namespace unless given (``data synth`` fills in each task's defaults).
    """
    d = _DEFAULTS
    features = (
        ("valor", "valor++", "all", "segments", "published") if unav else ("valor", "valor++")
    )
    suffix = f" (default {d.clips}; --task unav: 200)" if unav else ""
    parser.add_argument(
        "--clips",
        type=int,
        default=argparse.SUPPRESS if unav else d.clips,
        help=f"training clips{suffix}",
    )
    suffix = f" (default {d.val_clips}; --task unav: 100)" if unav else ""
    parser.add_argument(
        "--val-clips",
        type=int,
        default=argparse.SUPPRESS if unav else d.val_clips,
        help=f"validation clips{suffix}",
    )
    suffix = f" (default {d.test_clips}; --task unav: 100)" if unav else ""
    parser.add_argument(
        "--test-clips",
        type=int,
        default=argparse.SUPPRESS if unav else d.test_clips,
        help=f"test clips{suffix}",
    )
    what = (
        f"synthetic features: llp valor (default {d.features}) or valor++; unav all (default: "
        "CLIP/CLAP segment features and the published VGGish/I3D files), segments or published"
        if unav
        else "synthetic features"
    )
    parser.add_argument(
        "--features", choices=features, default=argparse.SUPPRESS if unav else d.features, help=what
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the synthetic world")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument("--out", type=Path, default=d.out, help="run folder")
    add_data_flags(parser)
    parser.add_argument("--epochs", type=int, default=d.epochs, help="training epochs per method")
    parser.add_argument("--warmup", type=int, default=d.warmup, help="warm-up epochs")
    parser.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    parser.add_argument("--lr-min", type=float, default=d.lr_min, help="final learning rate")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="batch size")
    parser.add_argument("--d-model", type=int, default=d.d_model, help="student width")
    parser.add_argument("--layers", type=int, default=d.num_layers, help="encoder layers")
    parser.add_argument("--heads", type=int, default=d.nhead, help="attention heads")
    parser.add_argument("--ff", type=int, default=d.dim_feedforward, help="feed-forward width")
    parser.add_argument(
        "--uwav-network",
        action="store_true",
        help="also train UWAV's objective on UWAV's network (arch uwav) as a fifth column; the "
        "other columns all train VALOR's network",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="arithmetic of the students' forward passes: float32 (default) or bfloat16 autocast "
        "(see docs/performance.md)",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the timeline pictures")
    add_progress_flags(parser)


def run(args: argparse.Namespace) -> int:
    from avparse.demo import NETWORK_NOTE, UWAV_NETWORK_NOTE, format_table, run_demo, scores_title

    cfg = DemoConfig(
        out=args.out, clips=args.clips, val_clips=args.val_clips, test_clips=args.test_clips,
        features=args.features, epochs=args.epochs, warmup=args.warmup, lr=args.lr,
        lr_min=args.lr_min, batch_size=args.batch_size, d_model=args.d_model,
        num_layers=args.layers, nhead=args.heads, dim_feedforward=args.ff, seed=args.seed,
        plot=not args.no_plot, progress=progress_enabled(args), notes=not args.quiet,
        uwav_network=args.uwav_network, precision=args.precision,
    )  # fmt: skip
    result = run_demo(cfg)
    print(f"\n{scores_title(cfg)}")
    print(format_table(result.scores))
    print(NETWORK_NOTE)
    if cfg.uwav_network:
        print(UWAV_NETWORK_NOTE)
    print(f"\nwrote {result.results}")
    for picture in result.pictures:
        print(f"wrote {picture} (clip {result.clip})")
    return 0
