"""Bad input as the project's commands report it: one line on standard error, `conformance: <subcommand>: <message>`,
and exit status 2; never argparse's usage text, never a traceback. --help still prints the whole help and exits 0."""

from __future__ import annotations

import argparse
import sys

from .report.text import visible

BAD_INPUT = 2


class UsageError(Exception):
    """Bad input found while parsing a command line: one line for ``subcommand`` (None: the command itself)."""

    def __init__(self, subcommand: str | None, message: str) -> None:
        super().__init__(message)
        self.subcommand = subcommand


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a UsageError instead of the usage text and exit."""

    def error(self, message: str):
        words = self.prog.split()  # "conformance" or "conformance <subcommand>"
        raise UsageError(words[1] if len(words) > 1 else None, message)


def fail(subcommand: str | None, message: str) -> int:
    """Print bad input as one line and return the exit status for it."""
    where = f"{subcommand}: " if subcommand else ""
    # A path or value from the command line, a report or a guest's console may hold a newline or an escape.
    print(f"conformance: {where}{visible(message)}", file=sys.stderr)
    return BAD_INPUT
