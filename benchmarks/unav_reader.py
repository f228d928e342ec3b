"""Reading UnAV-100's whole annotation file into dense labels: the goal is under 1 s.

Times, in-process, the median of ``--repeat`` runs of: parse and validate the JSON file
(:class:`avparse.data.unav.UnAVAnnotations`), then build the weak labels and the dense (T, 100)
labels of all 10,790 videos of the three splits (:meth:`UnAVAnnotations.dense`), and, for
comparison, the dense labels alone (from the parsed file); wall and CPU seconds. Run by hand
on a quiet machine::

    .venv/bin/python benchmarks/unav_reader.py [--unav ../shared/data/unav100] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_UNAV = REPO.parent / "shared" / "data" / "unav100"
SPLITS = ("train", "val", "test")


def _median(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds (CPU time is the fairer number on a busy machine)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unav", type=Path, default=DEFAULT_UNAV, help="UnAV-100 data root")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from avparse.data.unav import UnAVAnnotations

    def everything() -> None:
        ann = UnAVAnnotations(args.unav)
        for split in SPLITS:
            ann.weak(split)
            ann.dense(split)

    ann = UnAVAnnotations(args.unav)
    videos = len(ann)
    segments = sum(int(ann.lengths(s).sum()) for s in SPLITS)
    whole = _median(everything, args.repeat)
    parse = _median(lambda: UnAVAnnotations(args.unav), args.repeat)
    dense = _median(lambda: [ann.dense(s) for s in SPLITS], args.repeat)
    print(f"{videos} videos, {segments} segments x {len(ann.vocab)} classes (median wall / CPU)")
    print(f"read + validate + weak + dense: {whole[0]:.3f} / {whole[1]:.3f} s (goal < 1 s)")
    print(f"  read + validate:              {parse[0]:.3f} / {parse[1]:.3f} s")
    print(f"  dense labels alone:           {dense[0]:.3f} / {dense[1]:.3f} s")


if __name__ == "__main__":
    main()
