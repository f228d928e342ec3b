"""The run's reports at the root: failures (merged over torchrun ranks) and silent clips.

``harvest_failures.tsv`` lists this run's failed clips (``clip, file, reason``; header only
when none). Under torchrun every rank writes ``harvest_failures.tsv.rank<r>``; once all have,
rank 0 merges them. ``harvest_no_audio.tsv`` lists every clip of the root recorded without audio.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from avparse.harvest.outputs import FAILURES, NO_AUDIO_FOLDER, NO_AUDIO_REPORT
from avparse.harvest.plan import Failure
from avparse.utils.atomic import write_text


def tsv(rows: list[Failure]) -> str:
    lines = ["clip\tfile\treason"] + ["\t".join(r) for r in sorted(rows)]
    return "\n".join(lines) + "\n"


def read_tsv(path: Path) -> list[Failure]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        if line:
            clip, file, reason = line.split("\t", 2)
            rows.append((clip, file, reason))
    return rows


def write_reports(
    root: Path, failures: list[Failure], rank: int, world: int, barrier: Callable[[], None]
) -> None:
    """Write this run's failures (rank 0 merges all ranks' after ``barrier``) and silent clips."""
    if world == 1:
        write_text(root / FAILURES, tsv(failures))
        write_no_audio(root)
        return
    write_text(root / f"{FAILURES}.rank{rank}", tsv(failures))
    barrier()
    if rank == 0:
        rows: list[Failure] = []
        for r in range(world):
            part = root / f"{FAILURES}.rank{r}"
            if part.is_file():
                rows += read_tsv(part)
                part.unlink()
        write_text(root / FAILURES, tsv(rows))
        write_no_audio(root)
    barrier()  # rank 0 has merged before any rank leaves


def write_no_audio(root: Path) -> None:
    folder = root / NO_AUDIO_FOLDER
    rows = []
    for p in sorted(folder.glob("*.txt")):
        if not p.name.startswith("."):
            video, _, reason = p.read_text().strip().partition("\t")
            rows.append((p.stem, video, reason))
    if rows or (root / NO_AUDIO_REPORT).exists():
        write_text(root / NO_AUDIO_REPORT, tsv(rows))
