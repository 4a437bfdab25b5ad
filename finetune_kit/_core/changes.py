"""``changed()``: the one body of ``RetryPolicy.copy`` and ``Session.with_options``.

Both take their changes as ``**changes: Unpack[...]`` of a ``TypedDict`` (``total=False``):
a keyword not passed is simply absent, so no sentinel is needed to tell "not passed" from
``None``, and type checkers and editors still see every keyword.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from _typeshed import DataclassInstance

__all__ = ["changed"]

D = TypeVar("D", bound="DataclassInstance")


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
    fields = {field.name for field in dataclasses.fields(instance)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}")
    return dataclasses.replace(instance, **changes)
