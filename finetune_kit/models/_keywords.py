"""Keyword groups that several entry points of this package share, declared once, and the
check behind every ``**options: Unpack[SomeKwargs]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["DeployKwargs", "check_keywords"]


class DeployKwargs(TypedDict, total=False):
    """How to deploy: the keywords every deploy method takes (``AzureDeployments.deploy``,
    ``TunedModel.deploy`` and their async siblings) as ``**options: Unpack[DeployKwargs]``.

    Attributes:
        name: the deployment name; default: derived from the model id
            (``deployment_name_for``).
        sku: the deployment type (``Standard``, ``GlobalStandard``, ``Developer``, ...);
            default ``Standard``.
        capacity: the SKU capacity; default 1.
        wait: wait until the deployment answers (``provisioningState`` Succeeded); default
            True.
    """

    name: str | None
    sku: str
    capacity: int
    wait: bool


def check_keywords(where: str, options: Mapping[str, object], allowed: Iterable[str]) -> None:
    """Refuse a keyword outside ``allowed`` as Python would, naming the entry point ``where``.

    A ``TypedDict`` only guides type checkers: at run time ``**options`` takes anything, so
    the entry point checks what it got (``allowed`` is the TypedDict's ``__annotations__``).

    Raises:
        TypeError: a keyword that is not allowed (the first in sorted order).
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}")
