"""Where the local backend keeps its state: memory, or SQLite plus files under ``data_dir``.

Objects (files' metadata, jobs, events, checkpoints, models, batches, uploads, trained
weights) are JSON documents keyed by ``(kind, id)``; file contents are blobs. With a
``data_dir`` the documents live in ``state.sqlite3`` (one transaction per change, so a crash
never leaves half a change) and blobs in ``blobs/``, each written to a temporary file and
renamed into place so a reader never sees a partial file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Deferred", "Persistence"]


@dataclass(frozen=True)
class Deferred:
    """A document built only when it is needed: when it is written to disk, or read back.

    Trained weights and training runs are large, and the backend keeps the live objects
    anyway; in memory (no ``data_dir``) their JSON form is seldom read, so seldom built.
    """

    build: Callable[[], Any]


class Persistence:
    """A document + blob store; in memory when ``data_dir`` is None.

    Not thread-safe by itself: callers hold the lock of :class:`~finetune_kit.local._state.State`.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None) -> None:
        self._docs: dict[tuple[str, str], Any] = {}
        self._blobs: dict[str, bytes] = {}
        self._db: sqlite3.Connection | None = None
        self._dir: Path | None = None
        if data_dir is not None:
            self._dir = Path(data_dir)
            (self._dir / "blobs").mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self._dir / "state.sqlite3", check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, id TEXT NOT NULL, "
                "seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id))"
            )
            for kind, oid, body in self._db.execute("SELECT kind, id, body FROM docs ORDER BY seq"):
                self._docs[(kind, oid)] = json.loads(body)
        self._seq = len(self._docs)

    def load(self, kind: str) -> list[tuple[str, Any]]:
        """Every stored ``(id, document)`` of ``kind``, in the order first saved."""
        found = []
        for key, doc in self._docs.items():
            if key[0] == kind:
                if isinstance(doc, Deferred):
                    doc = self._docs[key] = doc.build()  # a value replaced, not a key added
                found.append((key[1], doc))
        return found

    def save_many(self, items: list[tuple[str, str, Any]]) -> None:
        """Store several ``(kind, id, document)`` at once (one transaction on disk); a
        :class:`Deferred` document is built here on disk, when first loaded in memory."""
        if not items:
            return
        if self._db is None:
            for kind, oid, doc in items:
                self._docs[(kind, oid)] = doc
            return
        rows = []
        for kind, oid, doc in items:
            built = doc.build() if isinstance(doc, Deferred) else doc
            self._docs[(kind, oid)] = built
            self._seq += 1
            rows.append((kind, oid, self._seq, json.dumps(built, separators=(",", ":"))))
        self._db.execute("BEGIN")
        try:
            # Keep the first-saved order: an update must not move a row to the end.
            self._db.executemany(
                "INSERT INTO docs (kind, id, seq, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                rows,
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def save(self, kind: str, oid: str, doc: Any) -> None:
        """Store one document."""
        self.save_many([(kind, oid, doc)])

    def delete(self, kind: str, oid: str) -> None:
        """Forget a document (no error when absent)."""
        self._docs.pop((kind, oid), None)
        if self._db is not None:
            self._db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, oid))

    def put_blob(self, oid: str, data: bytes) -> None:
        """Store a file's content atomically."""
        if self._dir is None:
            self._blobs[oid] = data
            return
        folder = self._dir / "blobs"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(folder / oid)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_blob(self, oid: str) -> bytes | None:
        """A file's content, or None."""
        if self._dir is None:
            return self._blobs.get(oid)
        path = self._dir / "blobs" / oid
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete_blob(self, oid: str) -> None:
        """Forget a file's content (no error when absent)."""
        if self._dir is None:
            self._blobs.pop(oid, None)
        else:
            (self._dir / "blobs" / oid).unlink(missing_ok=True)

    def close(self) -> None:
        """Release the database."""
        if self._db is not None:
            self._db.close()
            self._db = None
