"""Uploading a dataset: validate, reuse an identical upload, else files API or uploads API.

Reuse across processes: the uploaded file's name carries the SHA-256 of its bytes,
``<stem>-sha256-<64 hex>.jsonl``. Before uploading, the newest ``fine-tune`` files on the
service are listed (at most :data:`MAX_LIST_PAGES` pages of :data:`LIST_PAGE_SIZE`, so the
cost is bounded however many files the account holds) and one whose name carries the same
hash, with the same size and not in an ``error`` state, is reused. The service is the record,
so this survives a restart and works from another machine with the same account; nothing is
cached locally. An identical file older than the pages looked at is not found, and the data is
uploaded again: a bounded look-up is worth an occasional second copy.

Memory stays flat: a file-backed dataset is hashed in blocks, and its bytes are streamed from
the file by the HTTP client, never read whole. Files up to :data:`FILES_API_LIMIT` (512 MB) go
through ``files.create`` in one request. Larger ones go through the uploads API: create an
upload, add parts of :data:`PART_SIZE` (64 MB, each read from the file as it is sent, each
retried on its own), complete it. If that fails, the upload is cancelled so nothing is left
half-done, and the log says what remains (an upload that could not be cancelled expires on its
own an hour after creation).

Exactly once: ``files.create`` and ``uploads.complete`` are the calls that create a file.
After an ambiguous failure of either (timeout, dropped connection, 5xx: the service may have
acted before the reply was lost), the retry first looks for the file by its hashed name and
size, so a retry never stores the same data twice. (A retried ``uploads.create`` or part can
leave an unused pending upload or part behind; those hold no file and expire.) If the file
changes while it uploads, the upload is abandoned (cancelled, or the new file deleted), so no
file is ever named by a hash its bytes do not have.
"""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import PurePath
from typing import IO, TYPE_CHECKING, Final, Literal, Protocol, TypeAlias, TypedDict

import openai
from openai.types import FileObject

from .._core.client import (
    Request,
    arun_flow_off_loop,
    once,
    resolve_async_client,
    resolve_client,
    run_flow,
)
from .._core.paging import find_first
from .._exceptions import DatasetError
from ..facts._limits import MAX_FILE_BYTES, MAX_UPLOAD_BYTES, MAX_UPLOAD_PART_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Unpack

    from .._core.client import AnyClient, Flow
    from .._core.retry import RetryPolicy
    from ._source import Payload

__all__ = [
    "FILES_API_LIMIT",
    "LIST_PAGE_SIZE",
    "MAX_LIST_PAGES",
    "PART_SIZE",
    "UPLOADS_API_LIMIT",
    "UploadKwargs",
    "UploadableDataset",
    "aupload_dataset",
    "hashed_filename",
    "upload_dataset",
    "upload_flow",
]

logger = logging.getLogger("finetune_kit")

#: Largest file the files API takes in one request; larger ones use the uploads API.
FILES_API_LIMIT: Final = MAX_FILE_BYTES
#: Largest file the uploads API assembles.
UPLOADS_API_LIMIT: Final = MAX_UPLOAD_BYTES
#: Size of each part sent to the uploads API.
PART_SIZE: Final = MAX_UPLOAD_PART_BYTES
#: Files asked for per page when looking for an earlier identical upload.
LIST_PAGE_SIZE: Final = 1000
#: Pages of (newest) files looked through at most: the look-up's cost is bounded.
MAX_LIST_PAGES: Final = 3

_PURPOSE: Final = "fine-tune"
_MIME: Final = "application/jsonl"
_HASH_RE: Final = re.compile(r"-sha256-([0-9a-f]{64})\.jsonl$")


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

    def _upload_payload(self) -> Payload: ...

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
    """Look through the newest fine-tune files (a bounded number) for this hash and size."""

    def matches(file: FileObject) -> bool:
        return _matches(file, digest, size)

    found = yield from find_first(_list_files, matches, max_pages=MAX_LIST_PAGES)
    if found is None:
        logger.debug("no identical upload among the newest files looked at; uploading anew")
    return found


def _list_files(after: str | None) -> Request:
    return Request(
        "list fine-tune files",
        lambda c: c.files.list(
            purpose=_PURPOSE, order="desc", limit=LIST_PAGE_SIZE, after=after or openai.omit
        ),
    )


def _with_body(open_body: Callable[[], IO[bytes]], send: Callable[[IO[bytes]], object]) -> object:
    """Call ``send(body)`` with a freshly opened body, closed when the call is done.

    Each attempt opens its own body (a retry re-reads from the start). With an async client
    the call is an awaitable: the body is closed once it has been awaited.
    """
    body = open_body()
    try:
        result = send(body)
    except BaseException:
        body.close()
        raise
    if not inspect.isawaitable(result):
        body.close()
        return result

    async def awaited() -> object:
        try:
            return await result
        finally:
            body.close()

    return awaited()


_Sender: TypeAlias = "Callable[[AnyClient, IO[bytes]], object]"
"""Sends one request with an opened body on a client."""


def _send(description: str, payload: Payload, start: int, length: int, send: _Sender) -> Request:
    def call(client: AnyClient) -> object:
        return _with_body(lambda: payload.open(start, length), lambda body: send(client, body))

    return Request(description, call)


def _create_file(name: str, payload: Payload) -> Request:
    return _send(
        f"upload {name}",
        payload,
        0,
        payload.size,
        lambda c, body: c.files.create(file=(name, body, _MIME), purpose=_PURPOSE),
    )


def _add_part(upload_id: str, number: int, payload: Payload, start: int, length: int) -> Request:
    return _send(
        f"upload part {number} of upload {upload_id}",
        payload,
        start,
        length,
        lambda c, body: c.uploads.parts.create(upload_id, data=body),
    )


def _changed(name: str) -> DatasetError:
    return DatasetError(
        f"the file changed while it was being uploaded as {name}; nothing was kept: upload it "
        "again once it is no longer being written"
    )


def _upload_in_parts(name: str, payload: Payload, part_size: int) -> Flow[str]:
    upload = yield Request(
        f"create upload for {name}",
        lambda c: c.uploads.create(
            bytes=payload.size, filename=name, mime_type=_MIME, purpose=_PURPOSE
        ),
    )
    upload_id: str = upload.id
    part_ids: list[str] = []
    try:
        for number, start in enumerate(range(0, payload.size, part_size), start=1):
            length = min(part_size, payload.size - start)
            part = yield _add_part(upload_id, number, payload, start, length)
            part_ids.append(part.id)
        if not payload.unchanged():
            raise _changed(name)
        done = yield once(
            f"complete upload {upload_id}",
            Request(
                f"complete upload {upload_id}",
                lambda c: c.uploads.complete(upload_id, part_ids=part_ids),
            ),
            lambda: _find_existing(payload.digest, payload.size),
        )
    except Exception:
        yield from _cancel_upload(upload_id, len(part_ids))
        raise
    # After a lost reply, once() hands back the file it found instead of the upload.
    file = done if isinstance(done, FileObject) else done.file
    if file is None:
        raise RuntimeError(f"upload {upload_id} completed without a file")
    file_id: str = file.id
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


class UploadKwargs(TypedDict, total=False):
    """The keywords :func:`upload_dataset` and :func:`aupload_dataset` hand to
    :func:`upload_flow` (which holds their defaults and documents them)."""

    validate: bool
    model: str | None
    max_direct: int
    part_size: int


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

    Args:
        ds: the dataset.
        validate: validate first and refuse data with errors.
        model: the model to validate against (context length, format).
        role: what the file is for: validation data may have fewer than 10 examples.
        max_direct: above this many bytes, use the uploads API.
        part_size: bytes per part with the uploads API.

    Raises:
        DatasetValidationError: ``validate`` is true and the data has errors.
    """
    if validate:
        ds.validate(model=model, role=role).raise_for_errors()
    payload = ds._upload_payload()
    if payload.size > UPLOADS_API_LIMIT:
        raise DatasetError(
            f"the dataset is {payload.size:,} bytes; the service takes at most "
            f"{UPLOADS_API_LIMIT:,} (8 GB): split it or sample it"
        )
    digest, size = payload.digest, payload.size
    name = hashed_filename(ds, digest)
    existing = yield from _find_existing(digest, size)
    if existing is not None:
        logger.info("%s is already uploaded as %s; reusing it", name, existing.id)
        return existing.id
    if size > max_direct:
        return (yield from _upload_in_parts(name, payload, part_size))
    file: FileObject = yield once(
        f"upload {name}", _create_file(name, payload), lambda: _find_existing(digest, size)
    )
    if not payload.unchanged():
        yield Request(f"delete {file.id}", lambda c: c.files.delete(file.id))
        raise _changed(name)
    logger.info("uploaded %s as %s (%d bytes)", name, file.id, size)
    return file.id


def upload_dataset(
    ds: UploadableDataset,
    *,
    client: openai.OpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[UploadKwargs],
) -> str:
    """Upload ``ds`` for fine-tuning (or reuse an identical upload) and return the file id.

    Args:
        ds: the dataset.
        client: the client to use; omitted, the default one.
        retry: the retry policy; omitted, the default one.
        **options: ``validate``, ``model``, ``max_direct``, ``part_size`` (each described
            at :func:`upload_flow`).

    Raises:
        DatasetValidationError: ``validate`` is true and the data has errors.
    """
    return run_flow(upload_flow(ds, **options), resolve_client(client), retry)


async def aupload_dataset(
    ds: UploadableDataset,
    *,
    client: openai.AsyncOpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[UploadKwargs],
) -> str:
    """The async sibling of :func:`upload_dataset`: validating, hashing and reading the data
    run in a worker thread, only the requests on the event loop."""
    flow = upload_flow(ds, **options)
    return await arun_flow_off_loop(flow, resolve_async_client(client), retry)
