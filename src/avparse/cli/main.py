"""Entry point of the ``avparse`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``.
Only the chosen subcommand's module is imported, so ``avparse --help`` and ``avparse score`` never
pay for torch or transformers. Errors of kind :class:`AvparseError` become one line on stderr and
exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from avparse import __version__
from avparse.errors import AvparseError

# name -> (module under avparse.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("score", "score audio/visual event predictions against LLP dense labels"),
    "data": ("data", "check or pack a data root in the published layout"),
    "harvest": (
        "harvest",
        "decode videos, run the CLIP/CLAP teachers, write harvests and features",
    ),
    "calibrate": ("calibrate", "choose per-class teacher thresholds on the val split"),
    "train": ("train", "train the student (HAN / VALOR presets) on a data root"),
    "evaluate": ("evaluate", "run a trained student on a split and score it"),
    "parse": ("parse", "parse video files: events heard, seen, and both, with times"),
    "demo": ("demo", "synthetic LLP-like benchmark: train HAN and VALOR, compare them"),
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default in its help, unless it is empty or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, [], "")
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s arguments are loaded (all names are listed)."""
    parser = argparse.ArgumentParser(
        prog="avparse",
        description="Weakly-supervised audio-visual video parsing (VALOR).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"avparse {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_Formatter)
        if name == command:
            mod = importlib.import_module(f"avparse.cli.{module}")
            mod.add_arguments(sp)
            sp.set_defaults(_run=mod.run)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 work finished with failures, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except AvparseError as exc:
        if args.debug:
            raise
        print(f"avparse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avparse {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
