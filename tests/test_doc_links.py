"""The documentation is self-contained: every document a page or a code comment names exists here.

A user of the package has the repository and nothing beside it, so a link or a path to a
document outside the repository (``../shared/docs/...``, a notes file of the authors) is a dead
end. Scanned: Markdown files (README, CHANGELOG, docs/), and the Python sources, tests,
benchmarks and scripts. Checked:

- Markdown links ``[text](target)`` with a relative target: the target exists, relative to the
  page (anchors and web links aside).
- Any mention of a document, ``something.md`` or ``docs/name``: it exists in the repository
  (relative to the mentioning file, the repository root or ``docs/``).
- No path climbs out of the repository to a document (``../`` to a ``.md`` or to ``docs``).

The tests' optional real data under ``../shared/data`` is data, not a document, and is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCANNED = [
    *REPO.glob("*.md"),
    *(REPO / "docs").rglob("*.md"),
    *(REPO / "src").rglob("*.py"),
    *(REPO / "tests").rglob("*.py"),
    *(REPO / "benchmarks").rglob("*.py"),
    *(REPO / "scripts").rglob("*"),
]

MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
DOC_MENTION = re.compile(r"(?<![\w/.:-])((?:\.\.?/)*(?:[\w.-]+/)*[\w-]+\.md)\b")
DOCS_NAME = re.compile(r"(?<![\w/.-])((?:\.\./)*docs/[\w-]+(?:\.md)?)(?![\w/.-])")
OUTSIDE = re.compile(r"\.\./(?:\.\./)*shared/docs|\.\./[\w./-]*\.md\b")
"""Mentions of documents outside the repository: the shared notes, or ``../`` to a ``.md``."""

EXTERNAL_DOCS = {"UWAV.md"}
"""Files of other projects named as such in the text (``UWAV's README.md`` style), not links."""


def _exists(name: str, source: Path) -> bool:
    name = name.split("#", 1)[0]
    if not name:
        return True
    candidates = [source.parent / name, REPO / name, REPO / "docs" / name]
    if not name.endswith(".md"):
        candidates += [c.with_name(c.name + ".md") for c in candidates]
    for c in candidates:
        try:
            c.resolve().relative_to(REPO)
        except ValueError:
            continue  # outside the repository
        if c.exists():
            return True
    return False


def _text_files() -> list[Path]:
    out = []
    for path in SCANNED:
        if not path.is_file() or path.suffix not in {".md", ".py", ".sh", ""}:
            continue
        if ".venv" in path.parts or "__pycache__" in path.parts or path == Path(__file__):
            continue  # this file quotes dead references on purpose
        out.append(path)
    return sorted(set(out))


def dead_references(path: Path, text: str) -> list[str]:
    """Every dead or outside document reference of one file, as ``file:line: what``."""
    rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{rel}:{lineno}"
        for m in OUTSIDE.finditer(line):
            problems.append(f"{where}: points outside the repository: {m.group(0)!r}")
        if path.suffix == ".md":
            for m in MD_LINK.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                    continue
                if not _exists(target, path):
                    problems.append(f"{where}: link to a missing file: {target!r}")
        for pattern in (DOC_MENTION, DOCS_NAME):
            for m in pattern.finditer(line):
                name = m.group(1)
                if name in EXTERNAL_DOCS or name.startswith("../shared/data"):
                    continue
                if not _exists(name, path):
                    problems.append(f"{where}: names a document not in the repository: {name!r}")
    return list(dict.fromkeys(problems))


def test_no_document_points_outside_the_repository() -> None:
    problems: list[str] = []
    for path in _text_files():
        problems += dead_references(path, path.read_text(encoding="utf-8", errors="replace"))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "line",
    [
        "See ``docs/valor-reference.md`` sections 2 and 3.",
        "the sizes measured to work (``docs/env-notes``)",
        "read ../shared/docs/style.md first",
        "[the notes](../notes/plan.md)",
        "[reference](missing-page.md#section)",
    ],
)
def test_dead_references_are_found(line: str) -> None:
    """The checker is not vacuous: each of these lines is reported (as a doc page and as code)."""
    for name in ("docs/example.md", "src/avparse/example.py"):
        assert dead_references(REPO / name, line), (name, line)


@pytest.mark.parametrize(
    "line",
    [
        "See docs/reference.md section 5 and [training](training.md#presets).",
        "``docs/harvest.md`` and ``docs/training``",
        "real clips at ../shared/data/llp/video/BjCEufrlXm4.mp4 when present",
        "[web](https://example.org/x.md) and [anchor](#presets)",
    ],
)
def test_live_references_pass(line: str) -> None:
    assert dead_references(REPO / "docs" / "example.md", line) == []
