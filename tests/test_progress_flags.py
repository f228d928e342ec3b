"""Every long command takes --no-progress / --quiet (issue 18 item 5)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from avparse.cli.main import COMMANDS, build_parser

SHORT = {"score", "calibrate", "convert"}
"""Commands that finish in seconds and print only their result (no progress to hide)."""


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - SHORT))
def test_long_commands_take_no_progress_and_quiet(command: str) -> None:
    top = build_parser(command)
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for path, leaf in _leaves(sub.choices[command], (command,)):
        flags = {s for a in leaf._actions for s in a.option_strings}
        assert {"--no-progress", "--quiet"} <= flags, " ".join(path)


def test_data_synth_quiet_and_no_progress(tmp_path: Path, cli) -> None:
    """0.1: `data synth --quiet` was a usage error."""
    args = ["data", "synth", "--clips", "8", "--val-clips", "4", "--test-clips", "4"]
    res = cli(*args, tmp_path / "a", "--no-progress")
    assert res.code == 0 and res.err == "" and "next, step by step" in res.out
    res = cli(*args, tmp_path / "b", "--quiet")
    assert res.code == 0 and res.err == ""
    assert res.out.startswith(f"wrote {tmp_path / 'b'}:") and res.out.count("\n") == 1
    res = cli(*args, tmp_path / "c")
    assert "synth train: 1/1 chunk" in res.err  # progress lines without the flags
