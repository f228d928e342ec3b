"""``avparse convert``: a published ``checkpoint_best.pt`` -> our model folder with a model card.

Thin over :func:`avparse.model.card.convert_published`; see ``docs/parsing.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="published checkpoint_best.pt (a state dict)")
    parser.add_argument(
        "--preset", required=True, help="preset the checkpoint was trained with (e.g. valor++)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="model folder to write"
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        metavar="FILE",
        help="scores to put in the model card: metrics.json of `avparse evaluate` (or any JSON "
        "object of numbers)",
    )
    parser.add_argument(
        "--metrics-note",
        metavar="TEXT",
        help='what the scores are, e.g. "LLP test split, published features"',
    )
    parser.add_argument(
        "--source", metavar="TEXT", help="where the checkpoint came from (default: its file name)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in --out")


def run(args: argparse.Namespace) -> int:
    from avparse.model.card import CARD_FILE, convert_published, read_metrics

    metrics = read_metrics(args.metrics) if args.metrics else None
    out = convert_published(
        args.checkpoint, args.preset, args.out, metrics=metrics, metrics_note=args.metrics_note,
        source=args.source, overwrite=args.overwrite,
    )  # fmt: skip
    print(f"wrote {out}/config.json, model.safetensors, {CARD_FILE} (preset {args.preset})")
    return 0
