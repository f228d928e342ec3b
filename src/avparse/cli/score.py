"""``avparse score``: F-scores of audio / visual prediction files on the LLP val or test split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avparse.errors import AvparseError
from avparse.eval.metrics import format_scores
from avparse.eval.score import EVAL_SPLITS, format_per_class, score_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--annotations",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder with the LLP annotation files (AVVP_*.csv), e.g. a data root",
    )
    parser.add_argument("--split", choices=EVAL_SPLITS, default="test", help="split to score")
    parser.add_argument(
        "--audio",
        type=Path,
        required=True,
        metavar="A.tsv",
        help="audio events: filename, onset, offset, event_labels (tab-separated, header row)",
    )
    parser.add_argument(
        "--visual", type=Path, required=True, metavar="V.tsv", help="visual events, same format"
    )
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the ten numbers to this JSON file"
    )
    parser.add_argument(
        "--per-class", action="store_true", help="print (and write) the per-class table"
    )
    parser.add_argument(
        "--ci",
        action="store_true",
        help="add 95%% bootstrap intervals over clips (1000 resamples, seeded)",
    )


def run(args: argparse.Namespace) -> int:
    if args.json is not None and args.json.is_dir():  # before the work, not after it
        raise AvparseError(f"{args.json}: is a folder; --json takes a file name (scores.json)")
    if (Path(args.annotations) / "unav100_annotations.json").is_file():  # no roots import: fast
        raise AvparseError(
            f"{args.annotations}: a UnAV-100 root; score reads LLP annotations. UnAV-100 "
            "predictions are scored by `avparse evaluate --task unav` (its metrics.json)"
        )
    report = score_files(args.annotations, args.split, args.audio, args.visual)
    for note in report.notes:
        print(f"avparse score: note: {note}", file=sys.stderr)
    warning = report.warning()
    if warning:
        print(f"avparse score: warning: {warning}", file=sys.stderr)
    intervals = report.intervals() if args.ci else None
    print(format_scores(report.scores, intervals=intervals, title=report.headline()))
    if args.per_class:
        print()
        print(format_per_class(report.per_class))
    if args.json:
        from avparse.utils.atomic import write_json

        write_json(args.json, report.to_json(per_class=args.per_class, intervals=intervals))
    return 0
