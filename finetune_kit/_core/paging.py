"""Looking through a cursor-paged listing (files, batches), newest first, as a flow.

Used by every look-up for "what an earlier attempt or run already created": the upload that
finds an identical file, the batch submit that finds its input file and its batches.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from .client import Flow, Request

__all__ = ["find_first", "scan_pages"]

T = TypeVar("T")


class _Listed(Protocol):
    @property
    def id(self) -> str: ...


def scan_pages(
    list_page: Callable[[str | None], Request],
    visit: Callable[[Any], bool | Flow[bool]],
    *,
    max_pages: int | None = None,
) -> Flow[bool]:
    """Call ``visit`` on each listed item, page after page, until it returns True.

    Args:
        list_page: the request for the page after the given cursor (None: the first page).
        visit: called on each item in listing order; True ends the look-up. It returns a
            bool, or a flow of one when deciding takes requests of its own.
        max_pages: at most this many pages (None: until the listing is through), so that a
            look-up's cost stays bounded however many objects the account holds.

    Returns:
        True when ``visit`` ended the look-up; False when the listing (or ``max_pages``) was
        through first. A compatible server may leave out ``has_more`` or ignore ``after``: a
        page with nothing new also ends the listing, so a look-up never loops forever.
    """
    seen: set[str] = set()
    after: str | None = None
    pages = 0
    while max_pages is None or pages < max_pages:
        page = yield list_page(after)
        pages += 1
        items: list[_Listed] = list(page.data or [])
        for item in items:
            verdict = visit(item)
            if (yield from verdict) if inspect.isgenerator(verdict) else verdict:
                return True
        ids = [item.id for item in items]
        if page.has_more is False or not ids or seen.issuperset(ids):
            return False
        seen.update(ids)
        after = ids[-1]
    return False


def find_first(
    list_page: Callable[[str | None], Request],
    matches: Callable[[T], bool],
    *,
    max_pages: int | None = None,
) -> Flow[T | None]:
    """The first listed item (newest first) that ``matches``, or None; see :func:`scan_pages`."""
    found: list[T] = []

    def visit(item: T) -> bool:
        if matches(item):
            found.append(item)
        return bool(found)

    yield from scan_pages(list_page, visit, max_pages=max_pages)
    return found[0] if found else None
