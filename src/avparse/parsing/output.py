"""Writers for parse results: ``<stem>.json`` and ``<stem>.tsv`` (atomic).

A ``<stem>.json`` records the file it was parsed from (``"source"``: resolved path, size and
modification time, :func:`video_source`), so a later run can tell its own finished output from
another video's of the same name (:func:`source_state`).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from avparse.parsing.events import ParseResult
from avparse.utils.atomic import write_json, write_text

TSV_COLUMNS = ("modality", "label", "onset", "offset", "confidence")
"""Columns of ``<stem>.tsv``: one event per row, times in seconds."""


def _cell(text: str) -> str:
    # Class names come from users: a tab or newline inside one would break the table.
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def events_tsv(result: ParseResult) -> str:
    lines = ["\t".join(TSV_COLUMNS)]
    for e in result.events:
        lines.append(
            f"{e.modality}\t{_cell(e.label)}\t{e.onset:.3f}\t{e.offset:.3f}\t{e.confidence:.4f}"
        )
    return "\n".join(lines) + "\n"


SOURCE_KEY = "source"
"""Key of the parsed file's identity in ``<stem>.json``."""


def video_source(path: str | Path, _folders: dict[str, str] | None = None) -> dict[str, Any]:
    """``{"path": resolved path, "size": bytes, "mtime_ns": ...}`` of a video (size and time
    are None when the file cannot be read: such a record never counts as finished).

    ``_folders`` caches resolved folders across calls (planning 100,000 paths stats each file
    once and resolves each folder once; a file that is itself a link is resolved in full).
    """
    text = os.fspath(path)
    try:
        st: os.stat_result | None = os.lstat(text)
    except OSError:
        st = None
    if st is None or stat.S_ISLNK(st.st_mode):  # missing, or a link: resolve it in full
        resolved = os.path.realpath(text)
        try:
            st = os.stat(resolved)
        except OSError:
            return {"path": resolved, "size": None, "mtime_ns": None}
        return {"path": resolved, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    folder, name = os.path.split(os.path.join(os.getcwd(), text))
    cache = _folders if _folders is not None else {}
    real = cache.get(folder)
    if real is None:
        real = cache[folder] = os.path.realpath(folder)
    return {"path": os.path.join(real, name), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def source_state(recorded: dict[str, Any], source: dict[str, Any]) -> str | None:
    """How the output whose JSON is ``recorded`` relates to the video of ``source``.

    ``"done"``: it records this very file (resolved path, size and modification time);
    ``"stale"``: it records this path but the file changed since (or was written before sources
    were recorded and names this path), so the video is parsed again under the same name;
    None: it is another video's output.
    """
    mine = recorded.get(SOURCE_KEY)
    if not isinstance(mine, dict):  # written before sources were recorded: the path as given
        video = recorded.get("video")
        if isinstance(video, str) and str(Path(video).resolve()) == source["path"]:
            return "stale"
        return None
    if mine.get("path") != source["path"]:
        return None
    same = source["size"] is not None and all(
        mine.get(k) == source[k] for k in ("size", "mtime_ns")
    )
    return "done" if same else "stale"


def write_result(
    result: ParseResult,
    folder: str | Path,
    stem: str | None = None,
    source: dict[str, Any] | None = None,
    precision: str | None = None,
) -> list[Path]:
    """Write ``<stem>.tsv`` and then ``<stem>.json`` into ``folder``; returns their paths.

    ``source`` (:func:`video_source` of the parsed file, taken before parsing) is recorded in
    the JSON; by default it is taken from ``result.video`` now. ``precision``, when given, is
    recorded too (the models' arithmetic, part of what made the output).
    """
    folder = Path(folder)
    stem = stem or result.stem
    json_path, tsv_path = folder / f"{stem}.json", folder / f"{stem}.tsv"
    write_text(tsv_path, events_tsv(result))
    record = result.to_dict()
    record[SOURCE_KEY] = source or video_source(result.video)
    if precision is not None:
        record["precision"] = precision
    write_json(json_path, record)  # last: its presence marks the video as done
    return [json_path, tsv_path]


def read_result_json(path: str | Path) -> dict:
    """Load a ``<stem>.json`` written by :func:`write_result` (used by the index page and tests)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
