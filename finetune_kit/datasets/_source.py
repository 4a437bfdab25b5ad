"""Reading a JSONL file: lines, parsed examples, byte blocks and byte ranges, streamed.

Every reader of a dataset's file goes through here, so the rules of the format live in one
place: lines are numbered from 1 as in an editor (blank lines keep their numbers but yield
nothing), a UTF-8 byte order mark is dropped from the first line (validation reports it; every
other reader ignores it), and a file that cannot be read raises :class:`DatasetError`.
Nothing here holds more than one line or one block at a time.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Final

from .._exceptions import DatasetError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from _typeshed import WriteableBuffer

__all__ = [
    "BOM",
    "CHUNK_BYTES",
    "FileWindow",
    "Payload",
    "byte_blocks",
    "byte_ranges",
    "examples",
    "lines",
    "parsed",
    "sha256_of",
    "stamp",
    "strip_bom",
]

BOM: Final = b"\xef\xbb\xbf"
#: Bytes read at a time, and the size of the ranges large files are checked in.
CHUNK_BYTES: Final = 1 << 20

Stamp = tuple[int, int]


def strip_bom(raw: bytes) -> tuple[bytes, bool]:
    """``raw`` without a leading byte order mark, and whether it had one."""
    if raw.startswith(BOM):
        return raw[len(BOM) :], True
    return raw, False


def stamp(path: Path) -> Stamp:
    """The file's (size, mtime in ns): it changed if this did."""
    try:
        st = path.stat()
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from exc
    return (st.st_size, st.st_mtime_ns)


def lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines of the file (with their ``\\n``) and their 1-based numbers."""
    try:
        with path.open("rb") as file:
            for number, raw in enumerate(file, 1):
                if number == 1:
                    raw = strip_bom(raw)[0]
                if raw.strip():
                    yield number, raw
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from exc


def parsed(path: Path) -> Iterator[tuple[int, bytes, object]]:
    """Each line that is valid JSON: its number, its bytes and its value.

    Lines that are not are skipped: validation reports them; the callers only look or compare.
    """
    for number, raw in lines(path):
        try:
            yield number, raw, json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            continue


def examples(path: Path) -> Iterator[tuple[int, bytes, dict[str, object]]]:
    """Each example: its line number, its bytes and the parsed object.

    Raises:
        DatasetError: a line is not a JSON object (validate to see every problem at once).
    """
    for number, raw in lines(path):
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise DatasetError(f"{path}: line {number}: invalid JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: line {number}: not a JSON object")
        yield number, raw, record


def byte_blocks(path: Path) -> Iterator[bytes]:
    """The file's bytes, exactly, in blocks of :data:`CHUNK_BYTES`."""
    try:
        with path.open("rb") as file:
            while block := file.read(CHUNK_BYTES):
                yield block
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from exc


def byte_ranges(path: Path, chunk: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges of about ``chunk`` bytes (:data:`CHUNK_BYTES`) on line boundaries.

    Found by seeking, not reading: only one line per range is read here.
    """
    chunk = chunk or CHUNK_BYTES
    size = path.stat().st_size
    bounds = [0]
    with path.open("rb") as file:
        while bounds[-1] + chunk < size:
            file.seek(bounds[-1] + chunk)
            file.readline()  # to the end of the line the seek landed in
            if file.tell() >= size:
                break
            bounds.append(file.tell())
    bounds.append(size)
    return list(itertools.pairwise(bounds))


class FileWindow(io.RawIOBase):
    """``length`` bytes of a file from ``start``, as a seekable binary file of their own.

    This is what an upload sends: the HTTP client streams it in small reads (and seeks to its
    start when a request is re-sent), so a part of 64 MB or a whole file never sits in memory.
    It has no ``fileno()``, so a client measures it by seeking, not by the whole file's size.
    """

    def __init__(self, path: Path, start: int, length: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._start, self._length, self._pos = start, length, 0
        self._file.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, min(self._length, base + offset))
        self._file.seek(self._start + self._pos)
        return self._pos

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._length - self._pos)
        if want <= 0:
            return 0
        got = self._file.readinto(view[:want])
        self._pos += got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass(frozen=True)
class Payload:
    """The bytes an upload sends, described without holding them.

    Attributes:
        digest: SHA-256 (hex) of the bytes.
        size: their length.
        open: a readable, seekable window of ``length`` bytes from ``start``.
        unchanged: whether the source still holds the bytes hashed (a file may be rewritten
            while it uploads; then the upload must not be named by the old hash).
    """

    digest: str
    size: int
    open: Callable[[int, int], IO[bytes]]
    unchanged: Callable[[], bool]

    @classmethod
    def of_bytes(cls, data: bytes) -> Payload:
        """In-memory bytes (already in memory: a copy per part is cheap)."""
        return cls(
            digest=hashlib.sha256(data).hexdigest(),
            size=len(data),
            open=lambda start, length: io.BytesIO(data[start : start + length]),
            unchanged=lambda: True,
        )

    @classmethod
    def of_file(cls, path: Path, digest: str, at: Stamp) -> Payload:
        """The file at ``path``, whose bytes had ``digest`` when it had stamp ``at``."""
        return cls(
            digest=digest,
            size=at[0],
            open=lambda start, length: io.BufferedReader(FileWindow(path, start, length)),
            unchanged=lambda: stamp(path) == at,
        )


def sha256_of(path: Path) -> str:
    """SHA-256 (hex) of the file, read in blocks (memory stays flat)."""
    digest = hashlib.sha256()
    for block in byte_blocks(path):
        digest.update(block)
    return digest.hexdigest()
