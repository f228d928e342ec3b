"""Parse at scale (issue 22): collections as inputs and the index page's paging and search."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from avparse.errors import AvparseError
from avparse.parsing.batch import collect_inputs

INDEX_JS = Path(__file__).resolve().parents[1] / "src" / "avparse" / "parsing" / "index.js"


def test_collect_inputs_folders_patterns_and_lists(tmp_path: Path, monkeypatch) -> None:
    tree = tmp_path / "tree"
    for rel in ("b/2.mp4", "a/1.MKV", "a/deep/3.wav", "a/notes.txt", ".hidden/4.mp4", "c.mp4"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# a comment\n{tree / 'c.mp4'}\n\n{tmp_path / 'missing.mp4'}\n")
    got = collect_inputs([tree, str(tree / "b" / "*.mp4"), str(tmp_path / "nomatch*.mp4")],
                         listing)  # fmt: skip
    assert got == [
        tree / "a" / "1.MKV", tree / "a" / "deep" / "3.wav", tree / "b" / "2.mp4",
        tree / "c.mp4",  # the folder, recursively, sorted, hidden entries and .txt left out
        tree / "b" / "2.mp4",  # the pattern
        tmp_path / "nomatch*.mp4",  # matches nothing: kept, fails as that video's error
        tree / "c.mp4", tmp_path / "missing.mp4",  # the list, in its order, missing kept
    ]  # fmt: skip
    assert collect_inputs([str(tree / "**" / "*.wav")]) == [tree / "a" / "deep" / "3.wav"]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{tree / 'c.mp4'}\n"))
    assert collect_inputs([], "-") == [tree / "c.mp4"]
    with pytest.raises(AvparseError, match="list file not found"):
        collect_inputs([], tmp_path / "nolist.txt")


@pytest.mark.skipif(shutil.which("node") is None, reason="node absent: the page's logic untested")
def test_index_page_pages_and_searches(tmp_path: Path) -> None:
    rows = [{"video": f"v/{i}.mp4", "output": str(i), "status": "failed" if i % 10 == 0 else
             "parsed", "labels": ["Dog"] if i % 3 == 0 else ["Speech"]} for i in range(250)]  # fmt: skip
    script = f"""
const m = require({json.dumps(str(INDEX_JS))});
const rows = m.parseJsonl({json.dumps("".join(json.dumps(r) + chr(10) for r in rows) + '{"torn')});
const out = {{n: rows.length,
  first: m.select(rows, "", "", 0, m.PAGE),
  last: m.select(rows, "", "", 99, m.PAGE),
  dogs: m.select(rows, "dog", "", 0, m.PAGE),
  failedDogs: m.select(rows, "DOG", "failed", 0, m.PAGE)}};
console.log(JSON.stringify(out));
"""
    got = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True,
                                    check=True, timeout=60).stdout)  # fmt: skip
    assert got["n"] == 250  # the torn last line is skipped
    assert got["first"]["pages"] == 3 and len(got["first"]["rows"]) == 100
    assert got["last"]["page"] == 2 and len(got["last"]["rows"]) == 50
    assert got["dogs"]["total"] == 84
    assert got["failedDogs"]["total"] == 9  # i % 30 == 0
