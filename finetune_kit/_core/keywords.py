"""Keywords taken as ``**options: Unpack[SomeKwargs]``: the one check of what was passed, and
``changed()``, the one body of ``RetryPolicy.copy`` and ``Session.with_options``.

A group of keywords several entry points take is declared once as a ``TypedDict``
(``total=False``): type checkers and editors see every keyword, and a keyword not passed is
simply absent, so no sentinel is needed to tell "not passed" from ``None``. At run time
``**options`` takes anything, so each entry point checks what it got with
:func:`check_keywords`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from _typeshed import DataclassInstance

__all__ = ["changed", "check_keywords"]

D = TypeVar("D", bound="DataclassInstance")


def check_keywords(where: str, options: Mapping[str, object], allowed: Iterable[str]) -> None:
    """Refuse a keyword outside ``allowed`` as Python would, naming the entry point ``where``.

    Args:
        where: the entry point, as Python names a function in its own such error
            (``"classify()"``, ``"TunedModel.chat()"``).
        options: the keywords the entry point got in its ``**options``.
        allowed: the keywords it takes (a ``TypedDict``'s ``__annotations__``).

    Raises:
        TypeError: a keyword that is not allowed (the first in sorted order).
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}")


def changed(instance: D, where: str, changes: Mapping[str, object]) -> D:
    """A copy of the dataclass ``instance`` with ``changes``, checked by its ``__post_init__``.

    Args:
        instance: a frozen dataclass.
        where: the method, named in the error for a keyword that is no field
            (``"RetryPolicy.copy()"``), as Python names a function in its own such error.
        changes: field name to new value; fields not in it keep their value.

    Raises:
        TypeError: a keyword that is not one of the dataclass's fields (or a wrong type, from
            the dataclass's own checks).
    """
    check_keywords(where, changes, (field.name for field in dataclasses.fields(instance)))
    return dataclasses.replace(instance, **changes)
