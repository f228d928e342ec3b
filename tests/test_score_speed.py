"""`avparse score` stays cheap: the plain-file split agrees with csv's, and the command imports
nothing beyond what scoring needs (issue 17 item 3; timings in benchmarks/score.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avparse.data import llp
from avparse.vocab import LLP

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.parametrize(
    "text",
    [
        "filename\tonset\toffset\tevent_labels\na_0_10\t0\t3\tDog\nb_0_10\t2\t9\tSpeech, Dog\n",
        "filename\tonset\toffset\tevent_labels\na_0_10\t0\t3\t Dog \nb_0_10\t2\t9\tCat,Dog",
        "filename\tonset\toffset\tevent_labels\n",
        "filename\tonset\toffset\tevent_labels\na_0_10\t0\t3\tDog\n\nb_0_10\t1\t2\tDog\n",
        'filename\tonset\toffset\tevent_labels\na_0_10\t0\t3\t"Dog,Cat"\n',
        "filename\tonset\toffset\tevent_labels\r\na_0_10\t0\t3\tDog\r\n",
    ],
)
def test_plain_split_reads_what_csv_reads(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.tsv"
    path.write_bytes(text.encode())
    plain = llp._plain_table(text)
    if plain is not None:  # files it takes give csv's rows (a blank line: both of wrong width)
        assert [r for r in plain if r != [""]] == [r for r in llp._table(path) if r]
    careful = llp._careful_dense(path, LLP, "error")
    fast = llp.read_dense_rows(path, LLP)
    assert fast.filenames == careful.filenames
    for key in ("classes", "onsets", "offsets"):
        assert np.array_equal(getattr(fast, key), getattr(careful, key))


def test_mixed_single_and_multi_class_rows_keep_their_order() -> None:
    labels = ["Dog", "Cat,Dog", "Speech", "Speech", "Dog , Cat", "Cat"]
    rows, classes = llp._fast_classes(labels, LLP)  # type: ignore[misc]
    expected = [(i, LLP.index(p.strip())) for i, t in enumerate(labels) for p in t.split(",")]
    assert list(zip(rows, classes, strict=True)) == expected
    assert llp._fast_classes(["Dog", "Dog,Nope"], LLP) is None


def test_score_imports_only_what_it_needs(tmp_path: Path) -> None:
    """No csv, shutil (argparse's terminal width) or compression modules in `avparse score`."""
    code = (
        "import sys; from avparse.cli.main import main\n"
        "try:\n    main(['score', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({'csv', 'shutil', 'bz2', 'lzma', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC)}, check=True).stdout  # fmt: skip
    assert out.strip().splitlines()[-1] == "[]"
