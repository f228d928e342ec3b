"""Packing the feature store: size, time of a full pack (1 vs 2 reading threads), incremental.

Writes (once) a synthetic LLP-like root with VALOR features (``--clips`` train clips, a quarter
as many val and test clips) under ``$TMPDIR/avparse-bench-store-N``, then times, each in its own
process and interleaved ``--repeat`` times (median):

- a full pack into a new store with ``READ_THREADS`` = 1 and = 2;
- a repack of an up-to-date store (a ``stat`` per file, nothing read);
- a repack after one feature file changed;

and prints the store's size beside the size the same arrays take with 80 ResNet-152 rows (the
avparse 0.1 store). ``--src DIR`` times the full pack of another avparse source tree too (e.g.
a checkout of 0.1's ``src``) for a before/after. Run by hand::

    .venv/bin/python benchmarks/store.py [--clips 500] [--repeat 3] [--src /path/to/old/src]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"

PACK = """
import sys, time
from avparse.data import store
if hasattr(store, "READ_THREADS"):
    store.READ_THREADS = {threads}
t0 = time.perf_counter()
report = store.pack({root!r}, {out!r})
print(time.perf_counter() - t0, report.files_read)
"""


def _pack(root: Path, out: Path, threads: int, src: Path = SRC) -> tuple[float, int]:
    code = PACK.format(threads=threads, root=str(root), out=str(out))
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    seconds, files = done.stdout.split()
    return float(seconds), int(files)


def _size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*.npy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=500, help="train clips")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", type=Path, help="another avparse src tree to time beside this")
    args = parser.parse_args()
    sys.path.insert(0, str(SRC))
    from avparse.synthetic import generate_llp

    tmp = Path(tempfile.gettempdir())
    root = tmp / f"avparse-bench-store-{args.clips}"
    n = args.clips
    t0 = time.perf_counter()
    generate_llp(root, n_train=n, n_val=n // 4, n_test=n // 4, seed=0)
    print(f"root: {root} ({time.perf_counter() - t0:.0f} s to generate or reuse)")
    work = Path(tempfile.mkdtemp(prefix="avparse-bench-store-"))
    variants = {"1 thread": (1, SRC), "2 threads": (2, SRC)}
    if args.src:
        variants[f"{args.src}"] = (1, args.src)
    times: dict[str, list[float]] = {k: [] for k in variants}
    sizes: dict[str, int] = {}
    files = 0
    try:
        for i in range(args.repeat):
            for name, (threads, src) in variants.items():
                out = work / f"store-{i}-{threads}-{len(times[name])}"
                seconds, files = _pack(root, out, threads, src)
                times[name].append(seconds)
                sizes[name] = _size(out)
                if not (i == args.repeat - 1 and name == "2 threads"):
                    shutil.rmtree(out)
        kept = work / f"store-{args.repeat - 1}-2-{args.repeat - 1}"
        first = next(iter(times))
        for name, values in times.items():
            med = statistics.median(values)
            ratio = statistics.median(times[first]) / med
            print(f"full pack, {name}: {med:.2f} s (x{ratio:.2f} vs {first}), "
                  f"{files} files, store {sizes[name] / 2**20:.0f} MiB")  # fmt: skip
        res152 = sum(p.stat().st_size for p in kept.rglob("res152.npy"))
        print(f"store {_size(kept) / 2**20:.0f} MiB; with 80 ResNet-152 rows (0.1) it would be "
              f"{(_size(kept) + 7 * res152) / 2**20:.0f} MiB")  # fmt: skip
        time.sleep(0.2)  # beyond the store's window for just-changed files
        stat_only = [_pack(root, kept, 2) for _ in range(args.repeat)]
        print(f"repack, nothing changed: {statistics.median(s for s, _ in stat_only):.2f} s, "
              f"{stat_only[-1][1]} files read")  # fmt: skip
        ids = sorted(p.stem for p in (root / "feats/vggish").glob("*.npy"))
        changed = root / "feats/vggish" / f"{ids[0]}.npy"
        original = np.load(changed)
        try:
            np.save(changed, original + 1)
            seconds, read = _pack(root, kept, 2)
        finally:
            np.save(changed, original)
        print(f"repack, one file changed: {seconds:.2f} s, {read} files read")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
