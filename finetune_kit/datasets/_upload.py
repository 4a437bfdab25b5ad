"""Uploading a dataset: validate, reuse an identical upload, else files API or uploads API.

Reuse across processes: the uploaded file's name carries the SHA-256 of its bytes,
``<stem>-sha256-<64 hex>.jsonl``. Before uploading, the ``fine-tune`` files already on the
service are listed (newest first) and one whose name carries the same hash, with the same size
and not in an ``error`` state, is reused. The service is the record, so this survives a restart
and works from another machine with the same account; nothing is cached locally.

Files up to :data:`FILES_API_LIMIT` (512 MB) go through ``files.create`` in one request. Larger
ones go through the uploads API: create an upload, add parts of :data:`PART_SIZE` (64 MB, each
retried on its own), complete it. If that fails, the upload is cancelled so nothing is left
half-done, and the log says what remains (an upload that could not be cancelled expires on its
own an hour after creation).

The data is read into memory once; its SHA-256 names the file. A retried ``files.create`` after
an ambiguous failure (timeout, dropped connection, 5xx) first looks for the file by its hashed
name, so a retry never stores the same data twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, cast

import openai

from .._core.client import Request, arun_flow, once, resolve_async_client, resolve_client, run_flow
from .._exceptions import DatasetError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from openai.types import FileObject

    from .._core.client import Flow
    from .._core.retry import RetryPolicy

__all__ = [
    "FILES_API_LIMIT",
    "PART_SIZE",
    "UPLOADS_API_LIMIT",
    "UploadableDataset",
    "aupload_dataset",
    "hashed_filename",
    "upload_dataset",
    "upload_flow",
]

logger = logging.getLogger("finetune_kit")

#: Largest file the files API takes in one request; larger ones use the uploads API.
FILES_API_LIMIT: Final = 512 * 1024 * 1024
#: Largest file the uploads API assembles.
UPLOADS_API_LIMIT: Final = 8 * 1024 * 1024 * 1024
#: Size of each part sent to the uploads API.
PART_SIZE: Final = 64 * 1024 * 1024

_PURPOSE: Final = "fine-tune"
_MIME: Final = "application/jsonl"
_HASH_RE: Final = re.compile(r"-sha256-([0-9a-f]{64})\.jsonl$")
_LIST_PAGE: Final = 1000


class _Report(Protocol):
    @property
    def ok(self) -> bool: ...

    def raise_for_errors(self) -> None: ...


class UploadableDataset(Protocol):
    """What uploading needs from a dataset (``finetune_kit.Dataset`` provides it)."""

    @property
    def path(self) -> PurePath | str | None: ...

    @property
    def kind(self) -> str: ...

    def to_jsonl_bytes(self) -> bytes: ...

    def validate(
        self, model: str | None = None, *, role: Literal["training", "validation"] = ...
    ) -> _Report: ...


def hashed_filename(ds: UploadableDataset, digest: str) -> str:
    """The name a dataset is uploaded under: its own stem (or its kind) plus the hash."""
    stem = PurePath(str(ds.path)).stem if ds.path else f"finetune_kit-{ds.kind}"
    # Keep the name readable and safe for any backend: no separators or odd characters.
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80] or "dataset"
    return f"{stem}-sha256-{digest}.jsonl"


def _matches(file: FileObject, digest: str, size: int) -> bool:
    found = _HASH_RE.search(file.filename or "")
    return (
        found is not None
        and found.group(1) == digest
        and file.bytes == size
        and getattr(file, "status", None) != "error"
    )


def _find_existing(digest: str, size: int) -> Flow[FileObject | None]:
    """Look through the fine-tune files, newest first, for one with this hash and size."""
    after: str | None = None
    while True:
        page = yield _list_files(after)
        files: Sequence[FileObject] = page.data or []
        for file in files:
            if _matches(file, digest, size):
                return file
        if not files or page.has_more is False:
            return None
        after = files[-1].id


def _list_files(after: str | None) -> Request:
    return Request(
        "list fine-tune files",
        lambda c: c.files.list(
            purpose=_PURPOSE, order="desc", limit=_LIST_PAGE, after=after or openai.omit
        ),
    )


def _add_part(upload_id: str, number: int, chunk: bytes) -> Request:
    return Request(
        f"upload part {number} of upload {upload_id}",
        lambda c: c.uploads.parts.create(upload_id, data=chunk),
    )


def _create_file(name: str, data: bytes) -> Request:
    return Request(
        f"upload {name}", lambda c: c.files.create(file=(name, data, _MIME), purpose=_PURPOSE)
    )


def _upload_in_parts(name: str, data: bytes, part_size: int) -> Flow[str]:
    upload = yield Request(
        f"create upload for {name}",
        lambda c: c.uploads.create(
            bytes=len(data), filename=name, mime_type=_MIME, purpose=_PURPOSE
        ),
    )
    upload_id: str = upload.id
    part_ids: list[str] = []
    try:
        for number, start in enumerate(range(0, len(data), part_size), start=1):
            part = yield _add_part(upload_id, number, data[start : start + part_size])
            part_ids.append(part.id)
        done = yield Request(
            f"complete upload {upload_id}",
            lambda c: c.uploads.complete(upload_id, part_ids=part_ids),
        )
    except Exception:
        yield from _cancel_upload(upload_id, len(part_ids))
        raise
    if done.file is None:
        raise RuntimeError(f"upload {upload_id} completed without a file")
    file_id: str = done.file.id
    return file_id


def _cancel_upload(upload_id: str, parts_sent: int) -> Flow[None]:
    try:
        yield Request(f"cancel upload {upload_id}", lambda c: c.uploads.cancel(upload_id))
    except Exception as exc:
        logger.warning(
            "upload %s failed after %d part(s) and could not be cancelled (%s); it holds no "
            "usable file and expires on its own an hour after it was created",
            upload_id,
            parts_sent,
            type(exc).__name__,
        )
        return
    logger.warning(
        "upload %s failed after %d part(s); cancelled it, so no file was created",
        upload_id,
        parts_sent,
    )


def upload_flow(
    ds: UploadableDataset,
    *,
    validate: bool = True,
    model: str | None = None,
    role: Literal["training", "validation"] = "training",
    max_direct: int = FILES_API_LIMIT,
    part_size: int = PART_SIZE,
) -> Flow[str]:
    """The upload as a flow (see the module docstring); returns the file id.

    ``role`` says what the file is for: validation data may have fewer than 10 examples.
    """
    if validate:
        ds.validate(model=model, role=role).raise_for_errors()
    data = ds.to_jsonl_bytes()
    if len(data) > UPLOADS_API_LIMIT:
        raise DatasetError(
            f"the dataset is {len(data):,} bytes; the service takes at most "
            f"{UPLOADS_API_LIMIT:,} (8 GB): split it or sample it"
        )
    # The hash of the very bytes sent (not a second read of a file that may have changed).
    digest = hashlib.sha256(data).hexdigest()
    name = hashed_filename(ds, digest)
    existing = yield from _find_existing(digest, len(data))
    if existing is not None:
        logger.info("%s is already uploaded as %s; reusing it", name, existing.id)
        return existing.id
    if len(data) > max_direct:
        return (yield from _upload_in_parts(name, data, part_size))
    file = yield once(
        f"upload {name}", _create_file(name, data), lambda: _find_existing(digest, len(data))
    )
    file_id: str = cast("Any", file).id
    logger.info("uploaded %s as %s (%d bytes)", name, file_id, len(data))
    return file_id


def upload_dataset(
    ds: UploadableDataset,
    *,
    client: openai.OpenAI | None = None,
    validate: bool = True,
    retry: RetryPolicy | None = None,
    model: str | None = None,
    max_direct: int = FILES_API_LIMIT,
    part_size: int = PART_SIZE,
) -> str:
    """Upload ``ds`` for fine-tuning (or reuse an identical upload) and return the file id.

    Args:
        ds: the dataset.
        client: the client to use; omitted, the default one.
        validate: validate first and refuse data with errors.
        retry: the retry policy; omitted, the default one.
        model: the model to validate against (context length, format).
        max_direct: above this many bytes, use the uploads API.
        part_size: bytes per part with the uploads API.

    Raises:
        DatasetValidationError: ``validate`` is true and the data has errors.
    """
    flow = upload_flow(
        ds, validate=validate, model=model, max_direct=max_direct, part_size=part_size
    )
    return run_flow(flow, resolve_client(client), retry)


async def aupload_dataset(
    ds: UploadableDataset,
    *,
    client: openai.AsyncOpenAI | None = None,
    validate: bool = True,
    retry: RetryPolicy | None = None,
    model: str | None = None,
    max_direct: int = FILES_API_LIMIT,
    part_size: int = PART_SIZE,
) -> str:
    """The async sibling of :func:`upload_dataset`."""
    flow = upload_flow(
        ds, validate=validate, model=model, max_direct=max_direct, part_size=part_size
    )
    return await arun_flow(flow, resolve_async_client(client), retry)
