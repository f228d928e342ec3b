"""Parse many videos into a folder: ``avparse.parse_many(...)``, the job behind ``avparse parse``.

A batch is resumable and tolerant: a video whose finished output exists is skipped (unless
``overwrite``), a video that cannot be parsed is recorded with one line and the others are still
finished, and the report says which did what. Problems with the models or settings stop the batch
before any video (they raise :class:`AvparseError`), so a typo never costs a decode.

Output names (:func:`assign_outputs`): a video ``x/clip.mp4`` writes ``clip.json``, or
``clip-2.json``, ``clip-3.json``, ... when that name is another video's. A finished output
counts as a video's only when its JSON records that very file (resolved path, size and
modification time; :func:`avparse.parsing.output.source_state`), so ``z/clip.mp4`` is never
skipped because ``x/clip.mp4`` was parsed before it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError, first_line
from avparse.parsing.events import ParseResult
from avparse.utils.atomic import prepare_output_folder
from avparse.utils.progress import progress

MODALITY_ORDER = ("audio", "visual", "audio-visual")


@dataclass
class ParsedVideo:
    """What happened to one video of a batch."""

    video: Path
    stem: str
    status: str
    """``parsed``, ``skipped`` (its finished output existed, or it repeats an earlier input) or
    ``failed``."""
    json_path: Path
    result: ParseResult | None = None
    error: str | None = None
    """One line naming the video and what went wrong (``failed`` only)."""
    unexpected: bool = False
    """The failure was not an :class:`AvparseError` (a bug or a library's own error)."""
    notes: list[str] = field(default_factory=list)
    """Notes about this video alone (the parser's own notes are in :attr:`BatchReport.notes`)."""

    def counts(self) -> str:
        """``3 audio, 1 visual, 0 audio-visual`` for a parsed video."""
        if self.result is None:
            return ""
        return ", ".join(f"{len(self.result.events_of(m))} {m}" for m in MODALITY_ORDER)


@dataclass
class BatchReport:
    """The outcome of :func:`parse_many`, one :class:`ParsedVideo` per input, in input order."""

    videos: list[ParsedVideo]
    notes: list[str] = field(default_factory=list)
    index: Path | None = None
    """``index.html`` when ``html`` was asked for several videos."""

    def of(self, status: str) -> list[ParsedVideo]:
        return [v for v in self.videos if v.status == status]

    @property
    def failed(self) -> list[ParsedVideo]:
        return self.of("failed")

    @property
    def exit_status(self) -> int:
        """1 when some video failed (the others were finished), else 0."""
        return 1 if self.failed else 0


_NUMBERED = re.compile(r"(.+)-([0-9]+)")


def _number(stem: str, base: str) -> int:
    return 1 if stem == base else int(stem[len(base) + 1 :])


def assign_outputs(videos: Sequence[Path], out: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """``(stem, state, source)`` per video: its output name in ``out`` and what is there.

    ``state`` is ``"done"`` (the name's JSON records this very file), ``"stale"`` (it records
    this path, but the file changed since: parsed again under the same name), ``"new"`` (no
    output yet: the first name of ``stem``, ``stem-2``, ... that no JSON in ``out`` holds and
    no earlier video of ``videos`` took) or ``"repeat"`` (the same file as an earlier input:
    it shares that input's name and is not parsed twice). ``source`` is
    :func:`avparse.parsing.output.video_source` of the video. One listing of ``out``; only the
    JSON files of a video's own name family are read.
    """
    from avparse.parsing.output import read_result_json, source_state, video_source

    existing: set[str] = set()
    if out.is_dir():
        with os.scandir(out) as entries:
            existing = {e.name[:-5] for e in entries if e.name.endswith(".json")}
    family: dict[str, list[str]] = {}
    for stem in existing:
        family.setdefault(stem, []).append(stem)
        m = _NUMBERED.fullmatch(stem)
        if m:
            family.setdefault(m.group(1), []).append(stem)
    taken: dict[str, str] = {}  # stem -> resolved path of the input that took it
    first: dict[str, str] = {}  # resolved path -> stem of its first input
    assigned = []
    for video in videos:
        source = video_source(video)
        if source["path"] in first:
            assigned.append((first[source["path"]], "repeat", source))
            continue
        base = video.stem
        mine = None
        for stem in sorted(family.get(base, ()), key=lambda s, b=base: _number(s, b)):
            if stem in taken:
                continue
            try:
                recorded = read_result_json(out / f"{stem}.json")
            except (OSError, ValueError):
                continue  # unreadable: not a finished output of ours, and never overwritten
            state = source_state(recorded, source) if isinstance(recorded, dict) else None
            if state:
                mine = (stem, state)
                break
        if mine is None:
            n = 1
            while (name := base if n == 1 else f"{base}-{n}") in existing or name in taken:
                n += 1
            mine = (name, "new")
        taken[mine[0]] = source["path"]
        first[source["path"]] = mine[0]
        assigned.append((mine[0], mine[1], source))
    return assigned


def _one_line(video: Path, text: str) -> str:
    text = " ".join(text.split())
    return text if str(video) in text else f"{video}: {text}"


def parse_many(
    videos: Sequence[str | Path],
    out: str | Path,
    model: str | Path | None = None,
    *,
    plot: bool = False,
    html: bool = False,
    truth_audio: str | Path | None = None,
    truth_visual: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    on_video: Callable[[ParsedVideo], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    raise_unexpected: bool = False,
    **options: Any,
) -> BatchReport:
    """Parse ``videos`` into ``out``: ``<stem>.json`` and ``<stem>.tsv`` per video (plus
    ``<stem>.png`` with ``plot``, ``<stem>.html`` and ``index.html`` with ``html``).

    Args:
        videos: video files; two with the same name get ``clip`` and ``clip-2`` (names are
            given by :func:`assign_outputs`: an output counts as a video's only when its JSON
            records that very file).
        out: output folder (created).
        model: a student folder, hub id or published ``.pt`` (with ``preset=``); None for
            zero-shot (``classes=`` or ``vocab=``). Other keywords are those of
            :class:`avparse.parsing.api.Parser`.
        truth_audio, truth_visual: dense-format label files drawn beside the events.
        overwrite: parse again videos whose finished output exists (else they are skipped).
        on_video: called after each video (parsed, skipped or failed), e.g. to print a line.
        on_note: called with each of the parser's notes, once, before the first video.
        raise_unexpected: re-raise errors that are not :class:`AvparseError` (for ``--debug``)
            instead of recording them.

    Returns:
        A :class:`BatchReport`; its ``exit_status`` is 1 when some video failed.
    """
    from avparse.parsing.api import Parser
    from avparse.parsing.output import write_result

    out = Path(out)
    paths = [Path(v) for v in videos]
    truth_files = (truth_audio, truth_visual)
    for path in truth_files:
        if path is not None and not Path(path).is_file():
            raise AvparseError(f"{path}: truth file not found")
    prepare_output_folder(out)
    report = BatchReport([])
    todo: list[ParsedVideo] = []
    sources = {}
    for video, (stem, state, source) in zip(paths, assign_outputs(paths, out), strict=True):
        item = ParsedVideo(video, stem, "todo", out / f"{stem}.json")
        if state == "repeat":
            item.status = "skipped"
            item.notes.append(f"the same file as an earlier input; written once as {stem}.json")
        elif state == "done" and not overwrite:
            item.status = "skipped"
        else:
            if state == "stale":
                item.notes.append(f"changed since {stem}.json was written; parsed again")
            todo.append(item)
            sources[id(item)] = source
        report.videos.append(item)
    for item in report.videos:
        if item.status == "skipped" and on_video:
            on_video(item)
    if not todo:
        return report
    parser = Parser(model, **options)
    report.notes = list(parser.notes)
    for note in report.notes:
        if on_note:
            on_note(note)
    pages = []
    for item in progress(todo, desc="parse", unit="video", enabled=show_progress):
        try:
            result = parser.parse(item.video)
        except AvparseError as exc:
            item.status, item.error = "failed", _one_line(item.video, str(exc))
        except Exception as exc:  # a decoder or model failure on one file must not end the batch
            if raise_unexpected:
                raise
            why = f"unexpected {type(exc).__name__}: {first_line(exc)}"
            item.status, item.error = "failed", _one_line(item.video, why)
            item.unexpected = True
        else:
            item.status, item.result = "parsed", result
            item.notes += result.notes[len(parser.notes) :]
            truth = None
            if any(truth_files):
                from avparse.parsing.plot import truth_events

                truth = truth_events(item.video.stem, parser.vocab, *truth_files)
            # the JSON is written last: its presence marks the video as done
            if plot:
                from avparse.parsing.plot import plot_timeline

                plot_timeline(result, out / f"{item.stem}.png", truth=truth)
            if html:
                from avparse.parsing.html import write_page

                pages.append((result, write_page(result, out / f"{item.stem}.html", truth=truth)))
            write_result(result, out, item.stem, sources[id(item)])
        if on_video:
            on_video(item)
    if html and len(paths) > 1:
        from avparse.parsing.html import write_index

        report.index = write_index(pages, out / "index.html")
    return report
