"""Writers for parse results: ``<stem>.json`` and ``<stem>.tsv`` (atomic)."""

from __future__ import annotations

import json
from pathlib import Path

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


def write_result(result: ParseResult, folder: str | Path, stem: str | None = None) -> list[Path]:
    """Write ``<stem>.tsv`` and then ``<stem>.json`` into ``folder``; returns their paths."""
    folder = Path(folder)
    stem = stem or result.stem
    json_path, tsv_path = folder / f"{stem}.json", folder / f"{stem}.tsv"
    write_text(tsv_path, events_tsv(result))
    write_json(json_path, result.to_dict())  # last: its presence marks the video as done
    return [json_path, tsv_path]


def read_result_json(path: str | Path) -> dict:
    """Load a ``<stem>.json`` written by :func:`write_result` (used by the index page and tests)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
