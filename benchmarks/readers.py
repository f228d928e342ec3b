"""Do the hand-written fast paths pay for themselves? Whole commands with and without them.

Two hand-written readers sit beside the library's: a split-based TSV grid reader in
``avparse.data.llp`` (beside ``csv``) and a regex ``.npy`` header parser in
``avparse.data.files`` (beside ``np.lib.format``). The project keeps such a path only where it
makes the whole command at least 2x faster. This times, each as its own process, the median of
``--repeat`` runs of

(a) ``avparse score`` of the real LLP test split (the dense truth scored against itself), with
    the annotation reader's fast path on and off;
(b) ``avparse data check`` of a synthetic root (``--clips`` train clips, VALOR features), with
    the header regex on and off;

and the readers alone in-process. Prints the ratios. Run by hand::

    .venv/bin/python benchmarks/readers.py [--llp ../shared/data/llp] [--clips 400]

With ``PYTHONPATH`` set to avparse 0.1's ``src`` (and ``--skip-npy``), (a) compares 0.1's
byte-level splitter with its csv path instead.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LLP = REPO.parent / "shared" / "data" / "llp"

OFF = {
    "tsv": "import avparse.data.llp as m; m._fast_columns = lambda path, columns: None",
    "npy": "import avparse.data.files as m; m._parse_header = lambda head, size: None",
    "none": "pass",
}


def _process(patch: str, argv: list[str], repeat: int) -> float:
    code = f"{OFF[patch]}\nimport sys\nfrom avparse.cli.main import main\nsys.exit(main({argv!r}))"
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _in_process(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_tsv(llp: Path, repeat: int) -> None:
    from avparse.data import llp as m

    names = {"train (10,000 rows)": "AVVP_train.csv", "dense audio": "AVVP_eval_audio.csv"}
    for what, name in names.items():
        path = llp / name
        if "dense" in what:
            fast = _in_process(lambda p=path: m.read_dense_rows(p, reversed_rows="ignore"), repeat)
            slow = _in_process(lambda p=path: m._careful_dense(p, m.LLP, "ignore"), repeat)
        else:
            fast = _in_process(lambda p=path: m.read_weak(p), repeat)
            slow = _in_process(lambda p=path: m._careful_weak(p, m.LLP), repeat)
        print(f"read {what}: column checks {fast * 1e3:.1f} ms, row by row {slow * 1e3:.1f} ms")
    ann = m.LLPAnnotations(llp)
    truth = ann.dense("test")
    pred = Path(tempfile.mkdtemp(prefix="avparse-bench-readers-"))
    for modality, matrix in zip(("audio", "visual"), truth, strict=True):
        m.write_dense_tsv(pred / f"{modality}.tsv", ann.weak("test").filenames, matrix)
    argv = ["score", "--annotations", str(llp), "--split", "test",
            "--audio", str(pred / "audio.tsv"), "--visual", str(pred / "visual.tsv")]  # fmt: skip
    bare = _process("none", ["--help"], repeat)
    fast = _process("none", argv, repeat)
    slow = _process("tsv", argv, repeat)
    print(f"`avparse --help` process: {bare:.3f} s (interpreter + CLI import)")
    print(f"`avparse score` process: column checks {fast:.3f} s, row by row {slow:.3f} s: "
          f"column checks make the command {slow / fast:.2f}x faster")  # fmt: skip


def bench_npy(clips: int, repeat: int) -> None:
    from avparse.synthetic import generate_llp

    root = Path(tempfile.gettempdir()) / f"avparse-bench-store-{clips}"
    generate_llp(root, n_train=clips, n_val=clips // 4, n_test=clips // 4, seed=0)  # as store.py
    for quick in (True, False):
        argv = ["data", "check", str(root), "--no-progress", *(["--quick"] if quick else [])]
        fast = _process("none", argv, repeat)
        slow = _process("npy", argv, repeat)
        print(f"`avparse data check{' --quick' if quick else ''}` ({clips} train clips): "
              f"regex {fast:.3f} s, np.lib.format {slow:.3f} s: "
              f"regex makes the command {slow / fast:.2f}x faster")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llp", type=Path, default=DEFAULT_LLP, help="real LLP annotation folder")
    parser.add_argument("--clips", type=int, default=400, help="train clips of the synthetic root")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-tsv", action="store_true", help="time the .npy header part only")
    parser.add_argument("--skip-npy", action="store_true", help="time the TSV part only")
    args = parser.parse_args()
    if args.skip_tsv:
        pass
    elif (args.llp / "AVVP_test_pd.csv").is_file():
        bench_tsv(args.llp, args.repeat)
    else:
        print(f"{args.llp}: no LLP annotation files; TSV reader not measured")
    if not args.skip_npy:
        bench_npy(args.clips, args.repeat)


if __name__ == "__main__":
    main()
