"""The one look-up through cursor-paged listings (files, batches), driven without a client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from finetune_kit._core.client import Request
from finetune_kit._core.paging import find_first, scan_pages

if TYPE_CHECKING:
    from collections.abc import Callable

    from finetune_kit._core.client import Flow

T = TypeVar("T")


@dataclass(frozen=True)
class Item:
    id: str


@dataclass(frozen=True)
class Page:
    data: list[Item]
    has_more: bool | None


def _list(after: str | None) -> Request:
    return Request(f"list after {after}", lambda _client: None)


def _drive(flow: Flow[T], pages: dict[str | None, Page]) -> tuple[T, list[str | None]]:
    """Answer each page request from ``pages`` (by cursor); the result and the cursors asked."""
    asked: list[str | None] = []
    reply: object = None
    while True:
        try:
            request = flow.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result, asked
        assert isinstance(request, Request)
        after = request.description.removeprefix("list after ")
        cursor = None if after == "None" else after
        asked.append(cursor)
        reply = pages[cursor]


def _is(wanted: str) -> Callable[[Item], bool]:
    return lambda item: item.id == wanted


def _never(item: Item) -> bool:
    del item
    return False


def _find(
    matches: Callable[[Item], bool], pages: dict[str | None, Page], *, max_pages: int | None = None
) -> tuple[Item | None, list[str | None]]:
    flow = find_first(_list, matches, max_pages=max_pages)
    return _drive(flow, pages)


ITEMS = [Item(f"i{n}") for n in range(6)]
PAGED = {
    None: Page(ITEMS[:2], True),
    "i1": Page(ITEMS[2:4], True),
    "i3": Page(ITEMS[4:], False),
}


def test_finds_the_first_match_and_stops_listing() -> None:
    found, asked = _find(_is("i2"), PAGED)
    assert found == Item("i2")
    assert asked == [None, "i1"]


def test_lists_through_when_nothing_matches() -> None:
    found, asked = _find(_never, PAGED)
    assert found is None
    assert asked == [None, "i1", "i3"]


def test_max_pages_bounds_the_look_up() -> None:
    found, asked = _find(_is("i5"), PAGED, max_pages=2)
    assert found is None
    assert asked == [None, "i1"]


def test_a_server_that_ignores_the_cursor_cannot_make_it_loop() -> None:
    # Every request gets the first page again and has_more is left out.
    same = Page(ITEMS[:2], None)
    pages: dict[str | None, Page] = {None: same, "i1": same}
    found, asked = _find(_never, pages)
    assert found is None
    assert asked == [None, "i1"]


def test_visit_may_make_requests_of_its_own() -> None:
    looked_at: list[str] = []

    def visit(item: Item) -> Flow[bool]:
        looked_at.append(item.id)
        yield from ()
        return item.id == "i3"

    stopped, asked = _drive(scan_pages(_list, visit), PAGED)
    assert stopped is True
    assert looked_at == ["i0", "i1", "i2", "i3"]
    assert asked == [None, "i1"]
