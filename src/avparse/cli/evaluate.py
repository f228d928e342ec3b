"""``avparse evaluate``: run a trained student on a split, write events, probabilities, scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from avparse.utils.progress import add_progress_flags, progress_enabled
from avparse.utils.speedflags import add_speed_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="data root (published layout)")
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="model folder, hub id, or a published checkpoint_best.pt (needs --preset)",
    )
    parser.add_argument("--preset", default=None, help="architecture of a .pt checkpoint")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model config override for a .pt checkpoint",
    )
    parser.add_argument(
        "--split", choices=("val", "test"), default="test", help="split to evaluate"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="writes metrics.json, probs.npz and the predictions (llp: audio.tsv, visual.tsv "
        "in the dense label format; ave: predictions.tsv, one line per clip and segment; unav: "
        "audio.tsv, visual.tsv, audio_visual.tsv with times in seconds)",
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="packed feature store; DATA/packed when omitted (a read-only DATA: the user cache)",
    )
    parser.add_argument(
        "--task",
        default=None,
        help="llp, ave or unav; default: the model's own (from its vocabulary)",
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where to run the model"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="clips per forward pass")
    add_speed_flags(parser)
    add_progress_flags(parser)


def run(args: argparse.Namespace) -> int:
    from avparse.eval import format_scores
    from avparse.train.evaluate import evaluate_checkpoint
    from avparse.utils.lock import hold_folder

    written: list[str] = []
    used: dict[str, str] = {}
    with hold_folder(args.out, flag="--out"):  # one job per output folder
        scores = evaluate_checkpoint(
            args.data, args.checkpoint, split=args.split, out=args.out, preset=args.preset,
            sets=args.set, store=args.store, task=args.task, device=args.device,
            batch_size=args.batch_size, progress=progress_enabled(args),
            precision=args.precision, compile=args.compile, written=written, used=used,
        )  # fmt: skip
    if not args.quiet:
        how = ", as trained" if not args.precision and used["precision"] != "float32" else ""
        print(f"{args.split}: {args.checkpoint} ({used['precision']}{how})")
    print(format_scores(scores))
    if not args.quiet:
        print(f"wrote {args.out}/{', '.join(written)}")
    return 0
