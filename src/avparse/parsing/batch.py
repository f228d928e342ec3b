"""Parse many videos into a folder: ``avparse.parse_many(...)``, the job behind ``avparse parse``.

Inputs (:func:`collect_inputs`): files, folders (searched recursively for video and audio
files), glob patterns and list files (one path per line, ``-`` for standard input), in a stable
order. Under ``torchrun`` the videos still to parse are shared out over the ranks (each parsed
once, the models loaded once per rank) and rank 0 writes the summaries once every rank is done.
Summaries: ``results.jsonl`` (a line per video, appended as each finishes, compacted to one
line per video at the end) and, with ``html``, an ``index.html`` that loads it (paged and
searchable, usable at 100,000 videos).

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

import glob
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError, first_line
from avparse.harvest.plan import MEDIA_EXTENSIONS
from avparse.parsing.events import ParseResult
from avparse.utils.atomic import append_line, prepare_output_folder, write_text
from avparse.utils.progress import progress

MODALITY_ORDER = ("audio", "visual", "audio-visual")

RESULTS = "results.jsonl"
"""The summary of an output folder: one JSON line per video (:func:`result_row`)."""

RESULTS_SCRIPT = "results.js"
"""The same rows for ``index.html`` opened from disk (browsers refuse to fetch ``file://``)."""

INDEX = "index.html"

OUTPUT_SUFFIXES = (".json", ".tsv", ".png", ".html")
"""The files of one video, in the order ``results.jsonl`` lists them."""


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
    position: int = 0
    """Its place among the collected inputs (reports keep input order)."""

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
    """``index.html`` when ``html`` was asked (rank 0)."""

    def __iter__(self) -> Iterator[ParsedVideo]:
        return iter(self.videos)

    def __len__(self) -> int:
        return len(self.videos)

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


SETTING_KEYS = ("mode", "model", "classes", "precision")
"""What a video's output JSON records of the settings that made it (besides the video)."""


def assign_outputs(
    videos: Sequence[Path], out: Path
) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """``(stem, state, source, recorded)`` per video: its output name in ``out``, what is there
    and (``done`` / ``stale``) what its JSON records of :data:`SETTING_KEYS`.

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
    settings: dict[str, dict[str, Any]] = {}  # stem -> what its JSON records of SETTING_KEYS
    first: dict[str, str] = {}  # resolved path -> stem of its first input
    assigned: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    folders: dict[str, str] = {}
    for video in videos:
        source = video_source(video, folders)
        if source["path"] in first:
            assigned.append((first[source["path"]], "repeat", source, {}))
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
                settings[stem] = {k: recorded.get(k) for k in SETTING_KEYS if k in recorded}
                break
        if mine is None:
            n = 1
            while (name := base if n == 1 else f"{base}-{n}") in existing or name in taken:
                n += 1
            mine = (name, "new")
        taken[mine[0]] = source["path"]
        first[source["path"]] = mine[0]
        assigned.append((mine[0], mine[1], source, settings.get(mine[0], {})))
    return assigned


def _one_line(video: Path, text: str) -> str:
    text = " ".join(text.split())
    return text if str(video) in text else f"{video}: {text}"


def _media_under(folder: Path) -> list[Path]:
    """Video and audio files under ``folder`` (recursively, hidden entries skipped), sorted."""
    found: list[str] = []
    for base, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(
            os.path.join(base, f)
            for f in files
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in MEDIA_EXTENSIONS
        )
    return [Path(f) for f in sorted(found, key=lambda f: f.split(os.sep))]


def read_list(list_file: str | Path) -> list[str]:
    """Entries of a list file (one per line; blank lines and ``#`` comments skipped); ``-`` reads
    standard input. A list file that cannot be read is one line (exit 2)."""
    if str(list_file) == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(list_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AvparseError(f"{list_file}: list file not found (--list)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AvparseError(f"{list_file}: cannot read the list file ({exc})") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def collect_inputs(
    items: Sequence[str | Path] = (), list_file: str | Path | None = None
) -> list[Path]:
    """The files to parse, in a stable order: ``items`` then the entries of ``list_file``.

    A folder gives its video and audio files (``avparse.harvest.plan.MEDIA_EXTENSIONS``,
    recursively, sorted); a
    glob pattern (``*``, ``?``, ``[``, ``**``) that is not an existing path gives its matches,
    sorted (folders among them expanded); anything else is kept as given, so a missing file
    is recorded as that video's failure, not a fatal error. A pattern that matches nothing is
    kept as given too (it fails as ``no file matches this pattern``, :func:`unmatched_pattern`).
    """
    entries = [str(i) for i in items]
    if list_file is not None:
        entries += read_list(list_file)
    out: list[Path] = []
    for entry in entries:
        if os.path.isdir(entry):
            out.extend(_media_under(Path(entry)))
            continue
        path = Path(entry)
        if glob.has_magic(entry) and not os.path.lexists(entry):
            matches = sorted(glob.glob(entry, recursive=True))
            if not matches:
                out.append(path)
            for match in matches:
                m = Path(match)
                out.extend(_media_under(m) if m.is_dir() else [m])
        else:
            out.append(path)
    return out


def unmatched_pattern(path: str | Path) -> bool:
    """Whether an input of :func:`collect_inputs` is a glob pattern that matched no file."""
    return glob.has_magic(str(path)) and not os.path.lexists(path)


def result_row(item: ParsedVideo, source: dict[str, Any] | None, files: list[str]) -> dict:
    """The ``results.jsonl`` line of one video."""
    row: dict[str, Any] = {
        "video": str(item.video),
        "path": (source or {}).get("path") or str(item.video),
        "status": item.status,
        "output": item.stem,
        "files": files,
    }
    if item.result is not None:
        row["duration"] = round(item.result.duration, 3)
        row["events"] = {m: len(item.result.events_of(m)) for m in MODALITY_ORDER}
        row["labels"] = sorted({e.label for e in item.result.events})
    if item.error:
        row["error"] = item.error
    if item.notes:
        row["notes"] = item.notes
    return row


def _row_from_json(out: Path, stem: str) -> dict | None:
    """A ``parsed`` row rebuilt from a finished ``<stem>.json`` (a video with no line yet)."""
    from avparse.parsing.output import SOURCE_KEY, read_result_json

    try:
        data = read_result_json(out / f"{stem}.json")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    events = data.get("events") or []
    recorded = data.get(SOURCE_KEY)
    source: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    files = [f"{stem}{ext}" for ext in OUTPUT_SUFFIXES if (out / f"{stem}{ext}").is_file()]
    return {
        "video": str(data.get("video", "")),
        "path": source.get("path") or str(data.get("video", "")),
        "status": "parsed",
        "output": stem,
        "files": files,
        "duration": data.get("duration"),
        "events": {m: sum(e.get("modality") == m for e in events) for m in MODALITY_ORDER},
        "labels": sorted({str(e.get("label")) for e in events}),
    }


def compact_results(
    out: Path, stems: Sequence[str] = (), inputs: Sequence[str] | None = None
) -> list[dict]:
    """Rewrite ``out/results.jsonl`` with one line per video (the latest, by resolved path),
    adding rows for the finished outputs ``stems`` that have none; returns the rows. Torn or
    malformed lines (an interrupted append) are dropped.

    The rows say what the folder holds now: a ``parsed`` row whose ``<output>.json`` is gone is
    dropped, and with ``inputs`` (the resolved paths of this run's inputs) so is a ``failed``
    row of a video this run was not given (an input removed since, or a pattern that now
    matches files): a ``failed`` row is a failure of the latest run.
    """
    rows: dict[str, dict] = {}
    path = out / RESULTS
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("path"), str):
                rows.pop(row["path"], None)  # the latest line of a video wins, in its order
                rows[row["path"]] = row
    given = None if inputs is None else set(inputs)
    for key, row in list(rows.items()):
        if row.get("status") == "failed":
            stale = given is not None and key not in given
        else:
            stale = not (out / f"{row.get('output')}.json").is_file()
        if stale:
            del rows[key]
    have = {r.get("output") for r in rows.values()}
    for stem in stems:
        if stem not in have:  # a finished output without a line (results.jsonl lost or older)
            row = _row_from_json(out, stem)
            if row is not None and row["path"] not in rows:
                rows[row["path"]] = row
    ordered = sorted(rows.values(), key=lambda r: (str(r.get("output")), r["path"]))
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered))
    return ordered


@dataclass
class _Plan:
    items: list[ParsedVideo]
    todo: list[ParsedVideo]
    sources: dict[int, dict[str, Any]]


def run_settings(model: str | Path | None, options: dict[str, Any]) -> dict[str, Any]:
    """What this run's outputs will record of :data:`SETTING_KEYS`, found without loading a
    model (the classes of a student are its model's: ``model`` names them)."""
    from avparse.teachers.clap import DEFAULT_CLAP
    from avparse.teachers.clip import DEFAULT_CLIP

    zero_shot = bool(options.get("zero_shot")) or (
        model is None and (options.get("classes") is not None or options.get("vocab") is not None)
    )
    settings: dict[str, Any] = {"precision": options.get("precision") or "float32"}
    if not zero_shot:
        return {**settings, "mode": "student", "model": str(model)}
    clip = options.get("clip_model") or DEFAULT_CLIP
    clap = options.get("clap_model") or DEFAULT_CLAP
    settings.update(mode="zero-shot", model=f"{clip} + {clap}")
    try:
        from avparse.parsing.zeroshot import zero_shot_vocabulary

        vocab, _ = zero_shot_vocabulary(
            options.get("classes"), options.get("vocab"), options.get("thresholds")
        )
        settings["classes"] = list(vocab.names)
    except AvparseError:
        pass  # the parser says what is wrong with them
    return settings


def _other_settings(recorded: dict[str, Any], settings: dict[str, Any]) -> str | None:
    """The first setting an output was made with that this run's differs from (old outputs
    record no precision: float32 and bfloat16 runs both continue them)."""
    for key in SETTING_KEYS:
        if key in recorded and key in settings and recorded[key] != settings[key]:
            if key == "model" and _models(recorded[key]) == _models(settings[key]):
                continue  # the same folders, spelled another way (relative, through a link)
            return f"{key} {recorded[key]!r}, this run {settings[key]!r}"
    return None


def _models(name: Any) -> list[str]:
    """The model folders (or hub ids) of a recorded ``model`` (``A`` or ``CLIP + CLAP``),
    resolved where they are local paths."""
    parts = str(name).split(" + ")
    return [os.path.realpath(part) if os.path.exists(part) else part for part in parts]


def _plan(
    paths: list[Path], out: Path, overwrite: bool, settings: dict[str, Any] | None = None
) -> _Plan:
    plan = _Plan([], [], {})
    assigned = assign_outputs(paths, out)
    for i, (video, (stem, state, source, recorded)) in enumerate(zip(paths, assigned, strict=True)):
        item = ParsedVideo(video, stem, "todo", out / f"{stem}.json", position=i)
        if state == "repeat":
            item.status = "skipped"
            item.notes.append(f"the same file as an earlier input; written once as {stem}.json")
        elif state == "done" and not overwrite:
            other = _other_settings(recorded, settings or {})
            if other is not None:  # never a skip that hands back another run's results
                raise AvparseError(
                    f"{out / stem}.json: parsed with other settings ({other}); give another "
                    "--out, or --overwrite to parse again"
                )
            item.status = "skipped"
        else:
            if state == "stale":
                item.notes.append(f"changed since {stem}.json was written; parsed again")
            plan.todo.append(item)
        plan.sources[id(item)] = source
        plan.items.append(item)
    return plan


def iter_parse(
    videos: Sequence[str | Path],
    out: str | Path,
    model: str | Path | None = None,
    *,
    list_file: str | Path | None = None,
    plot: bool = False,
    html: bool = False,
    truth_audio: str | Path | None = None,
    truth_visual: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    on_note: Callable[[str], None] | None = None,
    raise_unexpected: bool = False,
    report: BatchReport | None = None,
    **options: Any,
) -> Iterator[ParsedVideo]:
    """Parse a collection into ``out``, yielding each :class:`ParsedVideo` as it is done.

    The iterator behind :func:`parse_many` (same arguments; ``report``, when given, collects
    the notes and the index path). Skipped videos come first, then each parsed or failed one as
    it finishes (its ``results.jsonl`` line already appended). Under ``torchrun`` each rank
    yields the videos it parsed (rank 0 also the skipped ones), and rank 0 writes the
    summaries after every rank is done; ``device="cuda"`` is each rank's local GPU.
    """
    from avparse.parsing.api import Parser
    from avparse.parsing.output import write_result
    from avparse.utils import distributed

    out = Path(out)
    truth_files = (truth_audio, truth_visual)
    for path in truth_files:
        if path is not None and not Path(path).is_file():
            raise AvparseError(f"{path}: truth file not found")
    prepare_output_folder(out)
    paths = collect_inputs(videos, list_file)
    if not paths:
        folders = [str(v) for v in videos if os.path.isdir(v)]
        if folders:  # name what was searched, not only what to give
            raise AvparseError(
                f"{', '.join(folders[:3])}: no video or audio files in it "
                f"({' '.join(sorted(MEDIA_EXTENSIONS))}; hidden entries skipped)"
            )
        raise AvparseError("no videos to parse: give files, folders, patterns or --list")
    if all(unmatched_pattern(p) for p in paths):  # refused before any model loads
        shown = ", ".join(str(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
        raise AvparseError(f"{shown}: no file matches this pattern")
    group = distributed.setup("cpu")  # gloo: the ranks only wait for each other
    try:
        settings = run_settings(model, options)
        plan = _plan(paths, out, overwrite, settings)
        distributed.barrier(group)  # every rank has planned before any rank writes
        mine = plan.todo[group.rank :: group.world]
        if group.main:
            yield from (v for v in plan.items if v.status == "skipped")
        if mine:
            if "device" in options:
                options["device"] = distributed.local_device(options["device"], group)
            parser = Parser(model, **options)
            if report is not None:
                report.notes = list(parser.notes)
            for note in parser.notes if group.main else ():
                if on_note:
                    on_note(note)
            bar = progress(mine, desc="parse", unit="video", enabled=show_progress and group.main)
            for item in bar:
                files = _parse_one(
                    parser, item, out, plan.sources[id(item)], plot=plot, html=html,
                    truth_files=truth_files, raise_unexpected=raise_unexpected,
                    write_result=write_result, precision=settings["precision"],
                )  # fmt: skip
                append_line(out / RESULTS, json.dumps(
                    result_row(item, plan.sources[id(item)], files), ensure_ascii=False
                ))  # fmt: skip
                yield item
        distributed.barrier(group)  # every rank is done: the summaries see all outputs
        if group.main:
            done = [v.stem for v in plan.items if v.status in ("skipped", "todo", "parsed")]
            given = [plan.sources[id(v)]["path"] for v in plan.items]
            rows = compact_results(out, done, given)
            if html:
                index = write_index_page(out, rows)
                if report is not None:
                    report.index = index
        # no rank exits (a rank with failed videos exits 1, and torchrun then stops the
        # others) before rank 0 has written the summaries
        distributed.barrier(group)
    finally:
        distributed.teardown(group)


def _parse_one(
    parser: Any,
    item: ParsedVideo,
    out: Path,
    source: dict[str, Any],
    *,
    plot: bool,
    html: bool,
    truth_files: tuple,
    raise_unexpected: bool,
    write_result: Callable,
    precision: str = "float32",
) -> list[str]:
    """Parse one video into ``out``; records a failure on ``item``; returns the files written."""
    if unmatched_pattern(item.video):  # not "video file not found": it was never a file name
        item.status, item.error = "failed", f"{item.video}: no file matches this pattern"
        return []
    try:
        result = parser.parse(item.video)
    except AvparseError as exc:
        item.status, item.error = "failed", _one_line(item.video, str(exc))
        return []
    except Exception as exc:  # a decoder or model failure on one file must not end the batch
        if raise_unexpected:
            raise
        why = f"unexpected {type(exc).__name__}: {first_line(exc)}"
        item.status, item.error = "failed", _one_line(item.video, why)
        item.unexpected = True
        return []
    item.status, item.result = "parsed", result
    item.notes += result.notes[len(parser.notes) :]
    truth = None
    if any(truth_files):
        from avparse.parsing.plot import truth_events

        truth = truth_events(item.video.stem, parser.vocab, *truth_files)
    files = []
    if plot:
        from avparse.parsing.plot import plot_timeline

        plot_timeline(result, out / f"{item.stem}.png", truth=truth)
        files.append(f"{item.stem}.png")
    if html:
        from avparse.parsing.html import write_page

        write_page(result, out / f"{item.stem}.html", truth=truth)
        files.append(f"{item.stem}.html")
    # the JSON is written last: its presence marks the video as done
    write_result(result, out, item.stem, source, precision=precision)
    return [f"{item.stem}.json", f"{item.stem}.tsv", *files]


def write_index_page(out: Path, rows: list[dict]) -> Path:
    """``index.html`` (loads ``results.jsonl``) and ``results.js`` (the same rows, for a page
    opened from disk)."""
    from avparse.parsing.html import script_json, write_results_index

    write_text(out / RESULTS_SCRIPT, f"avparseResults({script_json(rows)});\n")
    return write_results_index(out / INDEX, len(rows))


def parse_many(
    videos: Sequence[str | Path],
    out: str | Path,
    model: str | Path | None = None,
    *,
    list_file: str | Path | None = None,
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
    ``<stem>.png`` with ``plot``, ``<stem>.html`` with ``html``), ``results.jsonl`` (one line per
    video) and, with ``html``, ``index.html``.

    Args:
        videos: video (or audio) files, folders (searched recursively) and glob patterns
            (:func:`collect_inputs`); two files with the same name get ``clip`` and ``clip-2``
            (:func:`assign_outputs`: an output counts as a video's only when its JSON records
            that very file).
        out: output folder (created).
        model: a student folder, hub id or published ``.pt`` (with ``preset=``); None for
            zero-shot (``classes=`` or ``vocab=``). Other keywords are those of
            :class:`avparse.parsing.api.Parser`.
        list_file: a file of paths, one per line (``-``: standard input), after ``videos``.
        truth_audio, truth_visual: dense-format label files drawn beside the events.
        overwrite: parse again videos whose finished output exists (else they are skipped).
        on_video: called after each video (parsed, skipped or failed), e.g. to print a line.
        on_note: called with each of the parser's notes, once, before the first video.
        raise_unexpected: re-raise errors that are not :class:`AvparseError` (for ``--debug``)
            instead of recording them.

    Returns:
        A :class:`BatchReport` (iterable over its videos); its ``exit_status`` is 1 when some
        video failed. To handle each video as it finishes (a large collection), iterate
        :func:`iter_parse` instead. Under ``torchrun`` a rank's report holds its own videos.
    """
    report = BatchReport([])
    for item in iter_parse(
        videos, out, model, list_file=list_file, plot=plot, html=html,
        truth_audio=truth_audio, truth_visual=truth_visual, overwrite=overwrite,
        show_progress=show_progress, on_note=on_note, raise_unexpected=raise_unexpected,
        report=report, **options,
    ):  # fmt: skip
        report.videos.append(item)
        if on_video:
            on_video(item)
    report.videos.sort(key=lambda v: v.position)
    return report
