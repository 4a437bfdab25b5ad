"""Files and multi-part uploads: metadata records plus blobs, in the files API's shapes."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

from ..facts._limits import (
    MAX_FILE_BYTES,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PART_BYTES,
    UPLOAD_EXPIRES_SECONDS,
)
from ._errors import ApiError, bad_request, lookup, not_found
from ._records import FileRecord, UploadRecord
from ._state import limit, page, rand

if TYPE_CHECKING:
    from ._state import State

__all__ = ["FILE_PURPOSES", "Files"]

#: Purposes a client may give a file (``batch_output`` and ``fine-tune-results`` are ours).
FILE_PURPOSES: Final = ("fine-tune", "batch", "assistants", "vision", "user_data", "evals")


def _too_big(what: str, size: int, maximum: int, param: str) -> ApiError:
    return ApiError(
        413 if param == "file" else 400,
        f"{what} is {size} bytes; the maximum is {maximum} bytes.",
        param=param,
        code="file_too_large",
    )


class Files:
    """The files and uploads APIs."""

    def __init__(self, state: State) -> None:
        self.s = state
        self.files = state.records("file", FileRecord.from_doc)
        self.uploads = state.records("upload", UploadRecord.from_doc)

    # ---------------------------------------------------------------------------- files

    def create(self, *, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        """Store an uploaded file (``purpose`` as the files API accepts it)."""
        if purpose not in FILE_PURPOSES:
            raise bad_request(
                f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'", param="purpose"
            )
        if len(data) > MAX_FILE_BYTES:
            raise _too_big("The file", len(data), MAX_FILE_BYTES, "file")
        return self.add(filename=filename, purpose=purpose, data=data).to_api()

    def add(self, *, filename: str, purpose: str, data: bytes) -> FileRecord:
        """Store a file of any purpose (also the backend's own result and batch files)."""
        with self.s.lock:
            record = FileRecord(
                id="file-" + rand(24),
                bytes=len(data),
                created_at=int(self.s.now()),
                filename=filename,
                purpose=purpose,
            )
            self.s.db.put_blob(record.id, data)
            self.files[record.id] = record
            self.s.db.save("file", record.id, record.to_doc())
            return record

    def record(self, fid: str, *, param: str = "file_id") -> FileRecord:
        """A file's record (404 when unknown)."""
        with self.s.lock:
            return lookup(self.files, "file", fid, param=param)

    def get(self, fid: str) -> dict[str, Any]:
        """A file's metadata."""
        return self.record(fid).to_api()

    def list(
        self, *, purpose: str | None, after: str | None, limit: Any, order: str | None
    ) -> dict[str, Any]:
        """Files, newest first unless ``order=asc``; ``after`` is a file id."""
        if order not in (None, "asc", "desc"):
            raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", param="order")
        count = _limit(limit)
        with self.s.lock:
            items = [f for f in self.files.values() if purpose in (None, f.purpose)]
        if order != "asc":
            items.reverse()
        return page(items, after, count)

    def content(self, fid: str) -> bytes:
        """A file's bytes (404 when unknown)."""
        with self.s.lock:
            self.record(fid)
            data = self.s.db.get_blob(fid)
            if data is None:
                raise not_found("file", fid)
            return data

    def delete(self, fid: str) -> dict[str, Any]:
        """Delete a file and its content."""
        with self.s.lock:
            self.record(fid)
            del self.files[fid]
            self.s.db.delete("file", fid)
            self.s.db.delete_blob(fid)
            return {"id": fid, "object": "file", "deleted": True}

    # -------------------------------------------------------------------------- uploads

    def create_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a multi-part upload."""
        for key in ("bytes", "filename", "mime_type", "purpose"):
            if key not in body:
                raise bad_request(f"Missing required parameter: '{key}'.", param=key)
        size = body["bytes"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request("Invalid 'bytes': expected a non-negative integer.", param="bytes")
        if size > MAX_UPLOAD_BYTES:
            raise _too_big("The upload", size, MAX_UPLOAD_BYTES, "bytes")
        if body["purpose"] not in FILE_PURPOSES:
            raise bad_request(f"Invalid 'purpose': {body['purpose']!r}.", param="purpose")
        with self.s.lock:
            now = int(self.s.now())
            upload = UploadRecord(
                id="upload_" + rand(24),
                bytes=size,
                created_at=now,
                expires_at=now + UPLOAD_EXPIRES_SECONDS,
                filename=str(body["filename"]),
                purpose=str(body["purpose"]),
                mime_type=str(body["mime_type"]),
            )
            self.uploads[upload.id] = upload
            self.s.db.save("upload", upload.id, upload.to_doc())
            return upload.to_api()

    def _pending(self, uid: str) -> UploadRecord:
        upload = lookup(self.uploads, "upload", uid)
        if upload.status == "pending" and self.s.now() >= upload.expires_at:
            upload.status = "expired"
            self.s.db.save("upload", uid, upload.to_doc())
        if upload.status != "pending":
            raise bad_request(
                f"Upload {uid} is already {upload.status}; it no longer accepts changes."
            )
        return upload

    def add_upload_part(self, uid: str, data: bytes) -> dict[str, Any]:
        """Add one part (its bytes) to a pending upload."""
        if len(data) > MAX_UPLOAD_PART_BYTES:
            raise _too_big("The part", len(data), MAX_UPLOAD_PART_BYTES, "data")
        with self.s.lock:
            upload = self._pending(uid)
            pid = "part_" + rand(24)
            self.s.db.put_blob(pid, data)
            upload.parts.append(pid)
            self.s.db.save("upload", uid, upload.to_doc())
            return {
                "id": pid,
                "object": "upload.part",
                "created_at": int(self.s.now()),
                "upload_id": uid,
            }

    def complete_upload(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        """Join the listed parts, in order, into a file."""
        part_ids = body.get("part_ids")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise bad_request("Missing or invalid 'part_ids'.", param="part_ids")
        with self.s.lock:
            upload = self._pending(uid)
            unknown = [p for p in part_ids if p not in upload.parts]
            if unknown:
                raise bad_request(f"Part {unknown[0]} does not belong to {uid}.", param="part_ids")
            data = b"".join(self.s.db.get_blob(p) or b"" for p in part_ids)
            if len(data) != upload.bytes:
                raise bad_request(
                    f"The parts add up to {len(data)} bytes but the upload was created with "
                    f"{upload.bytes} bytes.",
                    param="part_ids",
                )
            md5 = body.get("md5")
            if isinstance(md5, str) and md5 and md5 != hashlib.md5(data).hexdigest():
                raise bad_request("The md5 checksum does not match the parts.", param="md5")
            record = self.add(filename=upload.filename, purpose=upload.purpose, data=data)
            self._drop_parts(upload)
            upload.status = "completed"
            upload.file = record.to_api()
            self.s.db.save("upload", uid, upload.to_doc())
            return upload.to_api()

    def cancel_upload(self, uid: str) -> dict[str, Any]:
        """Cancel a pending upload."""
        with self.s.lock:
            upload = self._pending(uid)
            self._drop_parts(upload)
            upload.status = "cancelled"
            self.s.db.save("upload", uid, upload.to_doc())
            return upload.to_api()

    def _drop_parts(self, upload: UploadRecord) -> None:
        for pid in upload.parts:
            self.s.db.delete_blob(pid)


def _limit(value: Any) -> int:
    # The files API pages up to 10,000 files at a time (default 10,000).
    return limit(value, 10_000, 10_000)
