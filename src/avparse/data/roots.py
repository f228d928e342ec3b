"""Which task a data root is for, from the annotation files at its top: :func:`root_task`.

One small function every command asks (``data check``, and the hint when a split file of the
asked task is missing): ``unav`` when ``unav100_annotations.json`` is there, ``ave`` when
``Annotations.txt`` is, ``llp`` when an ``AVVP_*.csv`` split file is, else the task a harvest
recorded in ``harvest.json``, else None. New tasks add their one rule here.
"""

from __future__ import annotations

from pathlib import Path

from avparse.data.ave import AVE_FILES
from avparse.data.layout import LLP_FILES, UNAV_ANNOTATIONS

TASK_NAMES = {"llp": "LLP", "ave": "AVE", "unav": "UnAV-100"}
"""Task -> how the messages name its data roots."""


def root_task(root: str | Path) -> str | None:
    """The task a data root is laid out for (``llp``, ``ave``, ``unav``), or None."""
    root = Path(root)
    if (root / UNAV_ANNOTATIONS).is_file():
        return "unav"
    if (root / AVE_FILES["annotations"]).is_file():
        return "ave"
    if any((root / LLP_FILES[k]).is_file() for k in ("train", "val", "test", "full")):
        return "llp"
    return _harvest_task(root)


def _harvest_task(root: Path) -> str | None:
    """The task recorded in ``ROOT/harvest.json`` (a harvest root before its annotation files
    were copied in), or None."""
    import json

    try:
        task = json.loads((root / "harvest.json").read_text()).get("task")
    except (OSError, ValueError, AttributeError):
        return None
    return task if task in TASK_NAMES else None


def task_hint(root: str | Path, task: str) -> str:
    """``" (ROOT is an AVE data root: pass --task ave)"`` when ``root`` is laid out for another
    task than ``task``; empty otherwise. Appended to a missing-split-file message."""
    found = root_task(root)
    if found is None or found == task:
        return ""
    name = TASK_NAMES.get(found, found)
    article = "an" if name[:1] in "AEIOU" and not name.startswith("Un") else "a"
    return f" ({root} is {article} {name} data root: pass --task {found})"
