"""What the commands' handlers share: saying why a command stopped, showing the library's
warnings, and asking (the one terminal question the commands ask) before something that costs
money."""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ask", "caught_warnings", "confirmed", "fail", "show_warnings"]


def ask(question: str) -> bool | None:
    """Ask a yes/no question on the terminal: True/False, or None when there is none to ask on.

    The question goes to stderr so that stdout stays clean for ``--json`` and pipes.
    """
    if not sys.stdin.isatty():
        return None
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in {"y", "yes"}


def fail(command: str, message: object, code: int = 1) -> int:
    """Say on stderr why ``finetune-kit COMMAND`` stopped; returns the exit ``code``."""
    sys.stderr.write(f"finetune-kit {command}: {message}\n")
    return code


@contextlib.contextmanager
def caught_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised inside (shown later with :func:`show_warnings`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """One ``warning: ...`` line on stderr for each recorded warning."""
    for warning in caught:
        sys.stderr.write(f"warning: {warning.message}\n")


def confirmed(
    command: str, question: str, *, charge: str, go_ahead: str, declined: str
) -> int | None:
    """Ask ``question``; None to go ahead, else the exit code after saying why not.

    Args:
        command: the command, named in the message.
        question: the yes/no question.
        charge: what would be confirmed, for the message when there is no terminal to ask on
            (e.g. ``"starting a paid job"``).
        go_ahead: what ``--yes`` does instead, for that message (e.g. ``"start it"``).
        declined: what to say when the answer is no (e.g. ``"not started"``).
    """
    answer = ask(question)
    if answer is None:
        return fail(
            command,
            f"stdin is not a terminal, so there is nobody to confirm {charge}: pass --yes to "
            f"{go_ahead} anyway",
            2,
        )
    return None if answer else fail(command, declined)
