"""The column keywords ``Dataset.from_pandas`` and ``Dataset.from_hf`` take, declared once.

The entry points take them as ``**columns: Unpack[FrameColumns]``;
:mod:`finetune_kit.display._frames` checks them with :func:`frame_columns` and reads the
frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, cast

from .._core.keywords import check_keywords

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FrameColumns", "frame_columns"]


class FrameColumns(TypedDict, total=False):
    """What ``Dataset.from_pandas`` and ``Dataset.from_hf`` read from a frame.

    Give ``text`` and ``label`` (labelled texts, with an optional ``system`` prompt) or
    ``messages`` (chat rows), not both.

    Attributes:
        text: the column of texts (each becomes the user's message).
        label: the column of labels (each becomes the assistant's answer).
        system: a system prompt put first in every labelled example.
        messages: the column of chat rows (a list of role/content dicts per row).
    """

    text: str | None
    label: str | None
    system: str | None
    messages: str | None


def frame_columns(where: str, options: Mapping[str, object]) -> FrameColumns:
    """``options`` as :class:`FrameColumns`, or a TypeError naming the entry point."""
    check_keywords(where, options, FrameColumns.__annotations__)
    return cast("FrameColumns", options)
