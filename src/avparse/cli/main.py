"""Entry point of the ``avparse`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``.
Only the chosen subcommand's module is imported, so ``avparse --help`` and ``avparse score`` never
pay for torch or transformers. Every error becomes one line on stderr and an exit status (see
:func:`main`); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from avparse import __version__
from avparse.errors import AvparseError, first_line
from avparse.utils import distributed

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
    "teacher": (
        "teacher",
        "UWAV's temporal teacher: pretrain it (train), label a data root with it (label)",
    ),
    "evaluate": ("evaluate", "run a trained student on a split and score it"),
    "parse": ("parse", "parse video files: events heard, seen, and both, with times"),
    "convert": ("convert", "turn a published checkpoint_best.pt into a model folder with a card"),
    "demo": (
        "demo",
        "synthetic LLP-like benchmark: HAN, VALOR (fused and modality teachers), UWAV",
    ),
}


LIGHT_COMMANDS = frozenset({"score"})
"""Commands that do no linear algebra (integer counting only), so numpy needs no BLAS threads."""


_WIDTH: list[int] = []


def _terminal_width() -> int:
    """argparse's default width (``shutil.get_terminal_size().columns - 2``), found once per
    process and without importing shutil: argparse makes a formatter for every option it adds,
    and ``avparse score`` should not pay for that (nor for shutil's compression modules)."""
    if not _WIDTH:
        try:
            columns = int(os.environ.get("COLUMNS", "0"))
        except ValueError:
            columns = 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                columns = 0
        _WIDTH.append((columns or 80) - 2)
    return _WIDTH[0]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default in its help, unless it is empty or the help already says it."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(
            prog, indent_increment, max_help_position,
            _terminal_width() if width is None else width,
        )  # fmt: skip

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
        sp.add_argument(  # also after the command: ``avparse score ... --debug``
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
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
    """Run the CLI; returns the exit status.

    0 done; 1 a run failed or a batch finished with failures (or an unexpected error: the hint
    says to rerun with ``--debug``); 2 bad input or settings (one line naming the file or flag);
    130 interrupted; 141 the reader of our output went away (``avparse score ... | head -1``).
    No traceback reaches the user unless ``--debug`` is given.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if _chosen_command(argv) in LIGHT_COMMANDS:
        # numpy has not been imported yet: without BLAS work, its thread pool is pure start-up
        # and exit cost (about 25 ms of CPU on 2 cores); a user's own setting is kept
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    debug = "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv
    command = _chosen_command(argv) or "avparse"
    prefix = "avparse" if command == "avparse" else f"avparse {command}"
    try:
        parser = build_parser(_chosen_command(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        status = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
        return status
    except SystemExit:
        raise
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except distributed.PeerFailed:
        return 1  # under torchrun: the rank that failed says why
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        message, status = describe(exc)
        if not distributed.claim_failure(message):
            return 1  # under torchrun: another rank failed first and says why
        print(f"{prefix}: error: {message}", file=sys.stderr)
        distributed.finish_failure()
        return status
    finally:
        distributed.stop_watching()  # a peer's failure after this point stops nothing here


def describe(exc: BaseException) -> tuple[str, int]:
    """The one line a user sees for ``exc`` and the exit status (2 input/settings, 1 otherwise)."""
    if isinstance(exc, AvparseError):
        return " ".join(str(exc).split()), 2
    if isinstance(exc, OSError):  # a path the user gave: missing, unwritable, a folder, disk full
        reason = exc.strerror or first_line(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = "no space left on device"  # the same words as utils.atomic's writers
        # a rename's destination (filename2) is the path the user gave; the source is our temp
        where = exc.filename2 if exc.filename2 is not None else exc.filename
        return (f"{where}: {reason}" if where is not None else reason), 2
    return f"unexpected {type(exc).__name__}: {first_line(exc)} (rerun with --debug for details)", 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


if __name__ == "__main__":
    raise SystemExit(main())
