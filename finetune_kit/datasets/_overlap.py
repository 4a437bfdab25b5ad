"""Examples shared by two datasets (training and validation must not overlap)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol

from ._split import canonical

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["fingerprint", "shared_examples"]


def shared_examples(training: _Fingerprinted, validation: _Fingerprinted) -> list[tuple[int, int]]:
    """Examples of ``validation`` that are also in ``training``: (validation line, training line).

    Lines are 1-based file lines (or positions, for in-memory data). Both sides are streamed;
    only a 16-byte digest per training example is kept, so large files stay cheap.
    """
    seen: dict[bytes, int] = {}
    for number, digest in training._fingerprints():
        seen.setdefault(digest, number)
    return [
        (number, seen[digest]) for number, digest in validation._fingerprints() if digest in seen
    ]


class _Fingerprinted(Protocol):
    def _fingerprints(self) -> Iterable[tuple[int, bytes]]: ...


def fingerprint(record: object) -> bytes:
    """A 16-byte digest of the example's canonical JSON: equal examples, equal digests."""
    # surrogatepass: a string with a lone surrogate still compares (validation reports it).
    data = canonical(record).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()
