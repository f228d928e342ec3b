"""The ``avparse`` command line: one thin module per subcommand over library functions."""

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in the help, without ``(default: None)``, ``(default: False)`` or
    ``(default: [])`` after required options, flags and repeatable ones."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            return action.help
        return super()._get_help_string(action)
