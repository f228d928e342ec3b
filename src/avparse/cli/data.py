"""``avparse data``: work on a data root in the published layout (``check``, more to come).

Each sub-subcommand is one entry of :data:`SUBCOMMANDS`: a help line, a function adding its
arguments and a function running it. Adding one is a few lines here; its library code is
imported inside its run function, so ``avparse data check`` never loads what another needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from avparse.cli import DefaultsHelpFormatter
from avparse.errors import AvparseError
from avparse.utils.progress import add_progress_flags, progress_enabled
from avparse.utils.text import count


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def _output_file(path: Path, flag: str) -> None:
    """Refuse an output path that cannot be written before the long work starts."""
    if path.is_dir():
        raise AvparseError(f"{path}: is a folder; {flag} needs a file name")
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if not parent.is_dir():
        raise AvparseError(f"{path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise AvparseError(f"{path}: {parent} is not writable")


def _add_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root", type=Path, metavar="ROOT", help="data root to check (LLP, AVE or UnAV-100)"
    )
    parser.add_argument(
        "--task",
        choices=("llp", "ave", "unav"),
        default=None,
        help="the root's task (default: recognised from its annotation files; unav: "
        "unav100_annotations.json)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="read only the .npy headers (shapes, dtypes, lengths), not the values",
    )
    parser.add_argument(
        "--workers", type=_count(1), default=4, help="threads reading feature files"
    )
    parser.add_argument(
        "--show", type=_count(0), default=10, help="problems to list by name (0: only the count)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the full report")
    parser.add_argument(
        "--accept-harvest-mismatch",
        action="store_true",
        help="report harvest positives outside the clips' weak labels as a note, not a problem",
    )
    add_progress_flags(parser)


def _run_check(args: argparse.Namespace) -> int:
    from avparse.data.check import check_root, format_report

    if args.json:
        _output_file(args.json, "--json")
    report = check_root(
        args.root,
        task=args.task,
        quick=args.quick,
        workers=args.workers,
        progress=progress_enabled(args),
        accept_mismatch=args.accept_harvest_mismatch,
    )
    print(format_report(report, show=args.show))
    if args.json:
        from avparse.utils.atomic import write_json

        write_json(args.json, report.to_json())
    return 0 if report.ok else 1


def _add_pack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root", type=Path, metavar="ROOT", help="LLP, AVE or UnAV-100 data root to pack"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="store folder (default ROOT/packed, AVE: packed_ave, UnAV-100: packed_unav; a "
        "read-only ROOT: the user cache)",
    )
    add_progress_flags(parser)


def _run_pack(args: argparse.Namespace) -> int:
    from avparse.data.ave import AVEAnnotations
    from avparse.data.ave_h5 import CACHE_FOLDER, all_rows, h5_kinds, is_ave_h5_root
    from avparse.data.store import PackError, default_store, pack, store_size

    out = args.out or default_store(args.root)
    try:
        report = pack(args.root, out, progress=progress_enabled(args))
    except PackError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        print(f"avparse data pack: {len(exc.problems)} problem(s); nothing packed for those arrays",
              file=sys.stderr)  # fmt: skip
        return 2
    if is_ave_h5_root(args.root):  # the official AVE maps: pooled once, cached with the store
        for kind, fk in h5_kinds().items():
            if (args.root / fk.folder).is_file() and fk.h5_shape != fk.shape:
                all_rows(args.root, kind, out / CACHE_FOLDER, len(AVEAnnotations(args.root).clips))
    print(f"{out}: {count(len(report.written), 'array')} written, {len(report.unchanged)} up to date, "
          f"{count(report.files_read, 'file')} read, {store_size(out) / 2**20:.1f} MiB")  # fmt: skip
    return 0


def _add_import_uwav(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, metavar="ROOT", help="LLP data root to write into")
    parser.add_argument(
        "labels",
        type=Path,
        metavar="LABELS",
        help="UWAV's LLP_Dataset folder (a_/v_segmentwise_pseudo_labels, _logits, "
        "_classwise_threhsolds.npy) or the teacher run folder holding it",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a temporal harvest ROOT already holds"
    )
    add_progress_flags(parser)


def _run_import_uwav(args: argparse.Namespace) -> int:
    from avparse.data.layout import TEMPORAL_HARVEST
    from avparse.temporal.uwav_labels import import_uwav_labels

    manifest = import_uwav_labels(
        args.labels, args.root, overwrite=args.overwrite, progress=progress_enabled(args)
    )
    counts = ", ".join(f"{s} {n}" for s, n in manifest["splits"].items())
    print(f"{args.root / TEMPORAL_HARVEST}: UWAV's labels imported ({counts} clips)")
    for split, scores in manifest["label_scores"].items():
        print(f"  labels on {split}: segment Type@AV {scores['seg_type']:.1f}, "
              f"event Type@AV {scores['evt_type']:.1f}")  # fmt: skip
    print("  train on them: avparse train --data ROOT --preset uwav --set harvest=temporal")
    return 0


def _add_synth(parser: argparse.ArgumentParser) -> None:
    from avparse.cli.demo import add_data_flags

    parser.add_argument("out", type=Path, metavar="OUT", help="data root to write")
    parser.add_argument(
        "--task",
        choices=("llp", "unav"),
        default="llp",
        help="llp: an LLP-like root (10-s clips, the demo's data); unav: a UnAV-like root "
        "(untrimmed videos of 10-60 s drawn from UnAV-100's statistics, docs/unav.md)",
    )
    add_data_flags(parser, unav=True)  # the demo's data: a root made here is the demo's
    parser.add_argument(
        "--segments",
        action="store_true",
        help="llp: also CLIP / CLAP segment features (feats_CLIP|feats_CLAP/segment_feats), with "
        "the frame-wise teachers of the name-based world shared with --task unav (the temporal "
        "teacher's inputs; --task unav: --features all or segments)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a synthetic root of other settings"
    )
    add_progress_flags(parser)


def _run_synth(args: argparse.Namespace) -> int:
    from avparse.cli.demo import _DEFAULTS
    from avparse.synthetic import COMPLETE_MARKER, generate_llp

    if args.task == "unav":
        return _run_synth_unav(args)
    d = _DEFAULTS
    for key, value in (("clips", d.clips), ("val_clips", d.val_clips),
                       ("test_clips", d.test_clips), ("features", d.features)):  # fmt: skip
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.features not in ("valor", "valor++"):
        raise AvparseError(f"--features {args.features} is for --task unav; llp: valor or valor++")
    marker = args.out / COMPLETE_MARKER
    before = marker.stat().st_mtime_ns if marker.is_file() else None
    root = generate_llp(
        args.out, n_train=args.clips, n_val=args.val_clips, n_test=args.test_clips,
        features=args.features, seed=args.seed, overwrite=args.overwrite, segments=args.segments,
        progress=progress_enabled(args),
    )  # fmt: skip
    done = "reused (same settings)" if before == marker.stat().st_mtime_ns else "wrote"
    preset = "valor" if args.features == "valor" else "valor++"
    summary = (
        f"{done} {root}: {args.clips} train / {args.val_clips} val / {args.test_clips} test "
        f"synthetic clips ({args.features} features, teacher harvests calibrated on val)"
    )
    if args.quiet:
        print(summary)
        return 0
    print(
        f"{summary}\n"
        "next, step by step:\n"
        f"  avparse data check {root}\n"
        f"  avparse train --data {root} --preset {preset} --out {root}-{preset}\n"
        f"  avparse evaluate --data {root} --checkpoint {root}-{preset}/model --split test "
        f"--out {root}-{preset}/test\n"
        f"  avparse score --annotations {root} --split test --audio {root}-{preset}/test/audio.tsv "
        f"--visual {root}-{preset}/test/visual.tsv"
    )
    return 0


def _run_synth_unav(args: argparse.Namespace) -> int:
    from avparse.synthetic import COMPLETE_MARKER
    from avparse.synthetic.unav import DEFAULT_COUNTS, generate_unav

    counts = {
        split: getattr(args, key, DEFAULT_COUNTS[split])
        for split, key in (("train", "clips"), ("val", "val_clips"), ("test", "test_clips"))
    }
    features = getattr(args, "features", "all")
    if args.segments:
        raise AvparseError("--segments is for --task llp; --task unav: --features all or segments")
    if features in ("valor", "valor++"):
        raise AvparseError(
            f"--features {features} is for --task llp; unav: all, segments or published"
        )
    marker = args.out / COMPLETE_MARKER
    before = marker.stat().st_mtime_ns if marker.is_file() else None
    root = generate_unav(
        args.out, n_train=counts["train"], n_val=counts["val"], n_test=counts["test"],
        features=features, seed=args.seed, overwrite=args.overwrite,
    )  # fmt: skip
    done = "reused (same settings)" if before == marker.stat().st_mtime_ns else "wrote"
    if args.quiet:
        print(f"{done} {root}")
        return 0
    lines = [
        f"{done} {root}: {counts['train']} train / {counts['val']} val / {counts['test']} test "
        f"synthetic UnAV-like videos ({features} features, teacher harvests calibrated on val)",
        "next, step by step:",
        f"  avparse data check {root}",
    ]
    if features != "segments":
        lines += [
            f"  avparse train --data {root} --task unav --preset unav --out {root}-unav",
            f"  avparse evaluate --data {root} --task unav --checkpoint {root}-unav/model "
            f"--split test --out {root}-unav/test",
        ]
    print("\n".join(lines))
    return 0


SUBCOMMANDS: dict[
    str,
    tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
] = {
    "check": (
        "validate a data root: annotation files, feature and harvest folders, per-file checks",
        _add_check,
        _run_check,
    ),
    "pack": (
        "pack feature and harvest files into memory-mapped arrays (incremental)",
        _add_pack,
        _run_pack,
    ),
    "import-uwav": (
        "turn UWAV's generated LLP labels (LLP_Dataset/) into the temporal-teacher harvest",
        _add_import_uwav,
        _run_import_uwav,
    ),
    "synth": (
        "write a synthetic LLP-like (the demo's data) or UnAV-like data root to try every command on",
        _add_synth,
        _run_synth,
    ),
}
"""name -> (help line, add arguments, run)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    for name, (help_text, add, run_fn) in SUBCOMMANDS.items():
        sp = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=DefaultsHelpFormatter,
        )
        add(sp)
        sp.add_argument(  # as on every command: ``avparse data check ROOT --debug``
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
        sp.set_defaults(_data_run=run_fn)
    parser.set_defaults(_data_parser=parser)


def run(args: argparse.Namespace) -> int:
    run_fn = getattr(args, "_data_run", None)
    if run_fn is None:
        args._data_parser.print_help(sys.stderr)
        return 2
    return int(run_fn(args) or 0)
