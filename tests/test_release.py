"""The version has one home and the CHANGELOG keeps step with it (issue 20 items 15, 16)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import avparse

ROOT = Path(__file__).resolve().parents[1]


def test_version_has_one_home_and_a_changelog_section(cli) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "avparse.__version__"}
    assert avparse.__version__ == "0.2.0"
    got = cli("--version")
    assert got.code == 0 and got.out.strip() == f"avparse {avparse.__version__}"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert sections[:2] == ["Unreleased", avparse.__version__]
    assert f"## [{avparse.__version__}] (2026-12-04)" in changelog


def test_dir_shows_the_lazy_api() -> None:
    names = dir(avparse)
    assert {"parse", "parse_many", "iter_parse", "__version__"} <= set(names)
    assert avparse.iter_parse.__module__ == "avparse.parsing.batch"


def test_readme_says_what_to_read_when_a_torchrun_batch_fails() -> None:
    """Issue 20 item 14: torchrun's ChildFailedError after a harvest with failed clips is
    documented as an exit-status report, pointing at the per-clip failure report."""
    from avparse.harvest.outputs import FAILURES

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Under `torchrun`**") :].split("\n\n")[0]
    assert "ChildFailedError" in section and FAILURES in section
