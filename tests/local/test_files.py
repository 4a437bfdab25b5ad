"""Files and uploads on the local backend."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import openai
import pytest

from .helpers import small_training_file, upload

if TYPE_CHECKING:
    from pathlib import Path

    from finetune_kit.local import LocalServer, ManualClock


def test_file_create_list_retrieve_content_delete(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    data = small_training_file(12)
    created = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert created.bytes == len(data)
    assert created.filename == "train.jsonl"
    assert created.purpose == "fine-tune"
    assert created.status == "processed"
    other = upload(client, b'{"custom_id": "1"}\n', purpose="batch")

    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == data
    listed = [f.id for f in client.files.list()]
    assert listed == [other, created.id]  # newest first
    assert [f.id for f in client.files.list(purpose="batch")] == [other]
    assert [f.id for f in client.files.list(order="asc")] == [created.id, other]

    deleted = client.files.delete(created.id)
    assert deleted.deleted
    assert deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)


def test_file_list_pagination(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    ids = [upload(client, f"{i}\n".encode(), purpose="user_data") for i in range(5)]
    first = client.files.list(limit=2)
    assert [f.id for f in first.data] == ids[:2:-1][:2]
    assert first.has_more
    assert [f.id for f in client.files.list(limit=2)] == list(reversed(ids))


def test_bad_purpose_is_400(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("x.jsonl", b"{}\n"), purpose="nonsense")  # type: ignore[arg-type]
    assert info.value.param == "purpose"


def test_uploads_in_parts(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    data = small_training_file(15)
    half = len(data) // 2
    up = client.uploads.create(
        bytes=len(data), filename="big.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    assert up.status == "pending"
    p1 = client.uploads.parts.create(up.id, data=data[:half])
    p2 = client.uploads.parts.create(up.id, data=data[half:])
    assert p1.object == "upload.part"
    assert p1.upload_id == up.id
    done = client.uploads.complete(
        up.id, part_ids=[p1.id, p2.id], md5=hashlib.md5(data).hexdigest()
    )
    assert done.status == "completed"
    assert done.file is not None
    assert done.file.bytes == len(data)
    assert client.files.content(done.file.id).content == data
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(up.id, data=b"late")


def test_upload_size_mismatch_and_cancel(local_server: LocalServer) -> None:
    client = local_server.client(max_retries=0)
    up = client.uploads.create(
        bytes=10, filename="x.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    part = client.uploads.parts.create(up.id, data=b"12345")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(up.id, part_ids=[part.id])
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(up.id, part_ids=["part_unknown"])
    cancelled = client.uploads.cancel(up.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.uploads.cancel(up.id)
    with pytest.raises(openai.NotFoundError):
        client.uploads.cancel("upload_missing")


def test_sdk_chunked_upload_helper(local_server: LocalServer, tmp_path: Path) -> None:
    client = local_server.client(max_retries=0)
    data = small_training_file(25)
    path = tmp_path / "train.jsonl"
    path.write_bytes(data)
    done = client.uploads.upload_file_chunked(
        file=path, mime_type="application/jsonl", purpose="fine-tune", part_size=1000
    )
    assert done.status == "completed"
    assert done.file is not None
    assert done.file.filename == "train.jsonl"
    assert client.files.content(done.file.id).content == data


def test_size_limits(local_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import finetune_kit.local._files as files_module
    from finetune_kit.facts._limits import MAX_UPLOAD_BYTES

    client = local_server.client(max_retries=0)
    monkeypatch.setattr(files_module, "MAX_FILE_BYTES", 6)
    monkeypatch.setattr(files_module, "MAX_UPLOAD_PART_BYTES", 4)
    with pytest.raises(openai.APIStatusError) as info:
        upload(client, b"x" * 7)
    assert info.value.status_code == 413
    assert upload(client, b"x" * 6)
    with pytest.raises(openai.BadRequestError, match="maximum"):
        client.uploads.create(
            bytes=MAX_UPLOAD_BYTES + 1,
            filename="big.jsonl",
            mime_type="text/jsonl",
            purpose="batch",
        )
    pending = client.uploads.create(
        bytes=8, filename="f.jsonl", mime_type="text/jsonl", purpose="batch"
    )
    with pytest.raises(openai.BadRequestError, match="maximum"):
        client.uploads.parts.create(pending.id, data=b"x" * 5)
    parts = [client.uploads.parts.create(pending.id, data=b"x" * 4).id for _ in range(2)]
    done = client.uploads.complete(pending.id, part_ids=parts)
    assert done.file is not None
    assert done.file.bytes == 8  # larger than a files-API file may be: uploads allow more


def test_an_expired_upload_refuses_parts(local_server: LocalServer, clock: ManualClock) -> None:
    client = local_server.client(max_retries=0)
    pending = client.uploads.create(
        bytes=1, filename="f.jsonl", mime_type="text/jsonl", purpose="batch"
    )
    clock.advance(3600)
    with pytest.raises(openai.BadRequestError, match="expired"):
        client.uploads.parts.create(pending.id, data=b"x")
