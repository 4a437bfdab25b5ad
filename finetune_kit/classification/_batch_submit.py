"""Batch input files and batches, each created exactly once; their files deleted afterwards.

Every input file is kept and every batch is billed, so each create is exactly-once:

- A call carries an idempotency key: the caller's, or one derived from the very bytes of its
  input files (every request's body, the model included), the endpoint and the window. Each
  batch carries the key in its ``metadata``, with its part number (``"2-of-3"``).
- Before uploading anything, the account's batches are listed and a batch carrying the key
  and part is reused - unless it has ended without anything left to collect (failed,
  cancelled, or completed/expired and already read: its input file deleted). So a re-run after
  a crash, in a new process with nothing in memory, waits for the batch the crashed run
  created instead of paying again. The input's SHA-256 travels in the metadata too: a key
  given again for other requests while its batch is unread is refused, not silently reused.
- An input file's name carries a hash of the key and the SHA-256 of its content; before
  uploading, the batch files are listed and one with that name and size is reused (a crash
  between upload and create).
- An upload or create that fails ambiguously (timeout, dropped connection, 5xx) looks for its
  effect before sending again (:func:`~finetune_kit._core.client.once`).

Matching is by key, part, name and size, never by timestamps: nothing here depends on the
client's and the service's clocks agreeing.

Once a batch's results are read its files are deleted (input first: a batch whose input file
is gone has been read, see above); a failed deletion is logged, never raised.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import partial
from typing import TYPE_CHECKING, Final

import openai

from .._core.client import Request, once
from .._core.paging import find_first, scan_pages

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from openai.types import Batch, FileObject

    from .._core.client import Flow

__all__ = [
    "CONTENT_METADATA_KEY",
    "ENDPOINT",
    "IDEMPOTENCY_METADATA_KEY",
    "PART_METADATA_KEY",
    "WINDOW",
    "check_key",
    "delete_files",
    "derive_key",
    "find_batches",
    "input_name",
    "part_label",
    "submit",
]

logger = logging.getLogger("finetune_kit")

#: The endpoint every batch runs on.
ENDPOINT: Final = "/v1/chat/completions"
#: The completion window (the only one the service offers).
WINDOW: Final = "24h"
#: The metadata key carrying a batch's idempotency key (the same name jobs use).
IDEMPOTENCY_METADATA_KEY: Final = "finetune_kit_idempotency_key"
#: The metadata key carrying a batch's part of its call (``"1-of-1"``).
PART_METADATA_KEY: Final = "finetune_kit_part"
#: The metadata key carrying the SHA-256 of a batch's input file (its requests).
CONTENT_METADATA_KEY: Final = "finetune_kit_content_sha256"

#: A metadata value holds at most 512 characters.
_MAX_KEY: Final = 512
#: The largest page ``batches.list`` serves.
_PAGE: Final = 100
_RUNNING: Final = frozenset({"validating", "in_progress", "finalizing"})
#: Ended with results worth collecting (unless already read).
_READABLE: Final = frozenset({"completed", "expired"})


def derive_key(model: str, contents: Sequence[bytes]) -> str:
    """The idempotency key of a call: the same for the same requests, different otherwise."""
    canonical = json.dumps(
        {
            "endpoint": ENDPOINT,
            "completion_window": WINDOW,
            "model": model,
            "files": [hashlib.sha256(content).hexdigest() for content in contents],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "ftkb1-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def check_key(key: str) -> None:
    """Refuse a key that cannot travel as a metadata value.

    Raises:
        ValueError: empty or longer than 512 characters.
    """
    if not 0 < len(key) <= _MAX_KEY:
        raise ValueError(f"idempotency_key must be 1 to {_MAX_KEY} characters (a metadata value)")


def part_label(number: int, total: int) -> str:
    """Which part of its call a batch is (``"2-of-3"``)."""
    return f"{number}-of-{total}"


def input_name(key: str, part: str, content: bytes) -> str:
    """The name an input file is uploaded under: the key's hash, the part, the content's hash."""
    key_hash = hashlib.sha256(key.encode()).hexdigest()[:12]
    digest = hashlib.sha256(content).hexdigest()
    return f"finetune_kit-batch-{key_hash}-{part}-sha256-{digest}.jsonl"


# --- finding what an earlier attempt or run created ---------------------------------------------


def _batches_page(after: str | None) -> Request:
    return Request(
        "list batches", lambda c: c.batches.list(limit=_PAGE, after=after or openai.omit)
    )


def _files_page(after: str | None) -> Request:
    return Request(
        "list batch files",
        lambda c: c.files.list(
            purpose="batch", order="desc", limit=_PAGE, after=after or openai.omit
        ),
    )


def _retrieve_file(file_id: str) -> Request:
    return Request(f"retrieve file {file_id}", lambda c: c.files.retrieve(file_id))


def _collectable(batch: Batch) -> Flow[bool]:
    """Whether a batch found by key still holds work to wait for or results to read."""
    if batch.status in _RUNNING:
        return True
    if batch.status not in _READABLE:
        # failed, cancelling, cancelled: nothing (or not what the caller wants) to collect;
        # a re-run is the caller asking to try again.
        return False
    try:
        yield _retrieve_file(batch.input_file_id)
    except openai.NotFoundError:
        return False  # its input file is gone: a run read the results and cleaned up
    return True


def find_batches(key: str, parts: Mapping[str, str]) -> Flow[dict[str, Batch]]:
    """The newest collectable batch carrying ``key``, for each of ``parts`` that has one.

    Lists every batch of the account (the API has no metadata filter for batches), newest
    first, and stops early once every part is found.

    Args:
        key: the idempotency key.
        parts: part label -> the SHA-256 of that part's input file.

    Raises:
        ValueError: a collectable batch carries the key and part but other requests (a key
            given twice for different work; once that batch is read, the key is free again).
    """
    found: dict[str, Batch] = {}

    def visit(batch: Batch) -> Flow[bool]:
        tags = batch.metadata or {}
        part = tags.get(PART_METADATA_KEY)
        wanted = tags.get(IDEMPOTENCY_METADATA_KEY) == key and part in parts and part not in found
        if part is not None and wanted and (yield from _collectable(batch)):
            if tags.get(CONTENT_METADATA_KEY) != parts[part]:
                raise ValueError(
                    f"idempotency_key {key!r} already names batch {batch.id}, whose requests "
                    "differ from these: pass another key (or wait until that batch is read)"
                )
            found[part] = batch
        return len(found) == len(parts)  # every part found: no need to list further

    yield from scan_pages(_batches_page, visit)
    return found


def _find_file(name: str, size: int) -> Flow[FileObject | None]:
    """The newest batch file called ``name`` with ``size`` bytes, if any."""

    def matches(file: FileObject) -> bool:
        return file.filename == name and file.bytes == size and file.status != "error"

    return (yield from find_first(_files_page, matches))


def _find_part(key: str, part: str, digest: str) -> Flow[Batch | None]:
    found = yield from find_batches(key, {part: digest})
    return found.get(part)


# --- creating -----------------------------------------------------------------------------------


def _upload(name: str, content: bytes) -> Request:
    return Request(
        f"upload batch input {name}",
        lambda c: c.files.create(file=(name, content, "application/jsonl"), purpose="batch"),
    )


def _create(file_id: str, metadata: dict[str, str]) -> Request:
    return Request(
        f"create batch for {file_id}",
        lambda c: c.batches.create(
            input_file_id=file_id,
            endpoint=ENDPOINT,
            completion_window=WINDOW,
            metadata=metadata,
        ),
    )


def _upload_once(key: str, part: str, content: bytes) -> Flow[str]:
    name = input_name(key, part, content)
    existing = yield from _find_file(name, len(content))
    if existing is not None:
        logger.info("batch input %s is already uploaded as %s; reusing it", name, existing.id)
        return existing.id
    file: FileObject = yield once(
        f"upload batch input {name}",
        _upload(name, content),
        lambda: _find_file(name, len(content)),
    )
    return file.id


def submit(files: Sequence[bytes], *, key: str, model: str, creator: str) -> Flow[list[Batch]]:
    """One batch per input file, each reused or created exactly once; in the files' order.

    Args:
        files: the JSONL input files' contents.
        key: the call's idempotency key.
        model: the model the requests ask (recorded in the batches' metadata).
        creator: recorded in the batches' metadata (``created_by``).
    """
    total = len(files)
    parts = {
        part_label(number, total): hashlib.sha256(content).hexdigest()
        for number, content in enumerate(files, start=1)
    }
    existing = (yield from find_batches(key, parts)) if files else {}
    batches: list[Batch] = []
    for (part, digest), content in zip(parts.items(), files, strict=True):
        batch = existing.get(part)
        if batch is not None:
            logger.info("batch %s already carries idempotency key %s; reusing it", batch.id, key)
        else:
            file_id = yield from _upload_once(key, part, content)
            metadata = {
                "created_by": creator,
                "model": model[:_MAX_KEY],
                IDEMPOTENCY_METADATA_KEY: key,
                PART_METADATA_KEY: part,
                CONTENT_METADATA_KEY: digest,
            }
            batch = yield once(
                f"create batch {part} for {file_id}",
                _create(file_id, metadata),
                partial(_find_part, key, part, digest),
            )
        batches.append(batch)
    return batches


# --- cleaning up --------------------------------------------------------------------------------


def _delete(file_id: str) -> Request:
    return Request(f"delete batch file {file_id}", lambda c: c.files.delete(file_id))


def delete_files(batch: Batch) -> Flow[None]:
    """Delete a batch's input, output and error files; failures are logged, not raised.

    The input file goes first: a batch whose input file is gone counts as read (see
    :func:`find_batches`), so a run interrupted here does not leave a batch that looks unread.
    """
    for file_id in (batch.input_file_id, batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        try:
            yield _delete(file_id)
        except openai.NotFoundError:
            continue  # already gone (a retried delete whose first reply was lost)
        except Exception as exc:
            logger.warning(
                "could not delete file %s of batch %s (%s: %s); delete it with "
                "client.files.delete(%r)",
                file_id,
                batch.id,
                type(exc).__name__,
                exc,
                file_id,
            )
