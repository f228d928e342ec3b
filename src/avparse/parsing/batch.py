"""Parse many videos into a folder: ``avparse.parse_many(...)``, the job behind ``avparse parse``.

A batch is resumable and tolerant: a video whose ``<stem>.json`` exists is skipped (unless
``overwrite``), a video that cannot be parsed is recorded with one line and the others are still
finished, and the report says which did what. Problems with the models or settings stop the batch
before any video (they raise :class:`AvparseError`), so a typo never costs a decode.
"""

from __future__ import annotations

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
    """``parsed``, ``skipped`` (its JSON existed) or ``failed``."""
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


def output_stems(videos: Sequence[Path]) -> list[str]:
    """Output stems, made unique (``clip``, ``clip-2``) when two videos share a name."""
    seen: dict[str, int] = {}
    stems = []
    for video in videos:
        n = seen.get(video.stem, 0) + 1
        seen[video.stem] = n
        stems.append(video.stem if n == 1 else f"{video.stem}-{n}")
    return stems


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
        videos: video files; two with the same name get ``clip`` and ``clip-2``.
        out: output folder (created).
        model: a student folder, hub id or published ``.pt`` (with ``preset=``); None for
            zero-shot (``classes=`` or ``vocab=``). Other keywords are those of
            :class:`avparse.parsing.api.Parser`.
        truth_audio, truth_visual: dense-format label files drawn beside the events.
        overwrite: parse videos whose JSON exists (else they are skipped).
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
    for video, stem in zip(paths, output_stems(paths), strict=True):
        item = ParsedVideo(video, stem, "todo", out / f"{stem}.json")
        if item.json_path.is_file() and not overwrite:
            item.status = "skipped"
        else:
            todo.append(item)
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
            item.notes = result.notes[len(parser.notes) :]
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
            write_result(result, out, item.stem)
        if on_video:
            on_video(item)
    if html and len(paths) > 1:
        from avparse.parsing.html import write_index

        report.index = write_index(pages, out / "index.html")
    return report
