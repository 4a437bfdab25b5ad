"""The ``finetune-kit`` command: parses arguments, calls the library, renders the result.

Each group of commands lives in its own ``_cli_*`` module exposing ``register(subparsers)``;
a command's handler takes the parsed namespace and returns the process exit code. Exit codes
shared by every command: 0 success, 1 the thing checked/run failed, 2 usage error or unreadable
input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence

from .._version import __version__
from ._ask import ask  # re-exported: command modules written before _ask use this name

__all__ = ["ask", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrars() -> list[Registrar]:
    # Imported here, not at module top, so `finetune-kit --version` stays instant.
    from . import _azure, _classify, _dataset, _demo, _job, _local

    return [m.register for m in (_demo, _dataset, _job, _classify, _local, _azure)]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command registered."""
    parser = argparse.ArgumentParser(
        prog="finetune-kit",
        description="Validate training data, run fine-tuning jobs, classify with tuned models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in _registrars():
        register(sub)
    return parser


def _format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    del category, filename, lineno, line
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``finetune-kit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Library warnings (a retiring base model, an unknown model name) are for the person at
    # the terminal: one plain line each, not Python's file:line form.
    warnings.formatwarning = _format_warning
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
