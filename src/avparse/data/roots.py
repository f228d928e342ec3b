"""Which task a data root is for, from the annotation files at its top: :func:`root_task`.

One small function every command asks (``data check``, and the hint when a split file of the
asked task is missing): ``ave`` when ``Annotations.txt`` is there, ``llp`` when an
``AVVP_*.csv`` split file is, else None. New tasks add their one rule here.
"""

from __future__ import annotations

from pathlib import Path

from avparse.data.ave import AVE_FILES
from avparse.data.layout import LLP_FILES

TASK_NAMES = {"llp": "LLP", "ave": "AVE"}
"""Task -> how the messages name its data roots."""


def root_task(root: str | Path) -> str | None:
    """The task a data root is laid out for (``llp``, ``ave``), or None when it shows none."""
    root = Path(root)
    if (root / AVE_FILES["annotations"]).is_file():
        return "ave"
    if any((root / LLP_FILES[k]).is_file() for k in ("train", "val", "test", "full")):
        return "llp"
    return None


def task_hint(root: str | Path, task: str) -> str:
    """``" (ROOT is an AVE data root: pass --task ave)"`` when ``root`` is laid out for another
    task than ``task``; empty otherwise. Appended to a missing-split-file message."""
    found = root_task(root)
    if found is None or found == task:
        return ""
    return f" ({root} is an {TASK_NAMES.get(found, found)} data root: pass --task {found})"
