"""Uploading datasets: validation first, reuse by content hash, files API or uploads in parts."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from finetune_kit import Dataset, DatasetValidationError, RetryPolicy
from finetune_kit._upload import aupload_dataset, hashed_filename, upload_dataset

from .sdk_fakes import Fault, Sleeps, error_response, page

if TYPE_CHECKING:
    from pathlib import Path

    import respx


def _dataset() -> Dataset:
    texts = [f"ticket {i}: my card was charged twice" for i in range(12)]
    return Dataset.from_labels(texts, ["billing" if i % 2 else "other" for i in range(12)])


def _file(file_id: str, filename: str, size: int, status: str = "processed") -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": 1,
        "filename": filename,
        "purpose": "fine-tune",
        "status": status,
    }


class FakeFiles:
    """Files and uploads endpoints, with faults like FakeJobs."""

    def __init__(self, router: respx.Router) -> None:
        self.files: list[dict[str, Any]] = []  # oldest first
        self.stored: list[bytes] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.parts: dict[str, bytes] = {}
        self.faults: dict[str, list[Fault | None]] = {}  # None: that call goes well
        self.calls: dict[str, int] = {}
        router.get("/files").mock(side_effect=self._list)
        router.post("/files").mock(side_effect=self._create)
        router.post("/uploads").mock(side_effect=self._upload)
        router.post(path__regex=r"/uploads/(?P<upload_id>[^/]+)/parts$").mock(
            side_effect=self._part
        )
        router.post(path__regex=r"/uploads/(?P<upload_id>[^/]+)/complete$").mock(
            side_effect=self._complete
        )
        router.post(path__regex=r"/uploads/(?P<upload_id>[^/]+)/cancel$").mock(
            side_effect=self._cancel
        )

    def _fault(self, name: str) -> Fault | None:
        self.calls[name] = self.calls.get(name, 0) + 1
        queue = self.faults.get(name) or []
        return queue.pop(0) if queue else None

    def _list(self, request: httpx.Request) -> httpx.Response:
        self.calls["list"] = self.calls.get("list", 0) + 1
        assert request.url.params["purpose"] == "fine-tune"
        newest_first = list(reversed(self.files))
        after = request.url.params.get("after")
        limit = int(request.url.params["limit"])
        start = next((i + 1 for i, f in enumerate(newest_first) if f["id"] == after), 0)
        chunk = newest_first[start : start + limit]
        return httpx.Response(200, json=page(chunk, has_more=start + limit < len(newest_first)))

    def _create(self, request: httpx.Request) -> httpx.Response:
        fault = self._fault("create")
        if fault is not None and not fault.after:
            return fault.apply()
        body = request.read()
        name = re.search(rb'filename="([^"]+)"', body)
        assert name is not None
        assert b'name="purpose"\r\n\r\nfine-tune' in body
        payload = body.split(b"\r\n\r\n", 2)[2]
        data = payload[: payload.index(b"\r\n--")]
        file = _file(f"file-{len(self.files) + 1}", name.group(1).decode(), len(data))
        self.files.append(file)
        self.stored.append(data)
        if fault is not None:
            return fault.apply()
        return httpx.Response(200, json=file)

    def _upload(self, request: httpx.Request) -> httpx.Response:
        self.calls["upload"] = self.calls.get("upload", 0) + 1
        body = httpx.Response(200, content=request.read()).json()
        upload = {
            "id": f"upload-{len(self.uploads) + 1}",
            "object": "upload",
            "bytes": body["bytes"],
            "created_at": 1,
            "expires_at": 3601,
            "filename": body["filename"],
            "purpose": body["purpose"],
            "status": "pending",
            "file": None,
        }
        self.uploads[upload["id"]] = upload
        return httpx.Response(200, json=upload)

    def _part(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        fault = self._fault("part")
        if fault is not None:
            return fault.apply()
        body = request.read()
        payload = body.split(b"\r\n\r\n", 1)[1]
        part_id = f"part-{len(self.parts) + 1}"
        self.parts[part_id] = payload[: payload.index(b"\r\n--")]
        return httpx.Response(
            200,
            json={"id": part_id, "object": "upload.part", "created_at": 1, "upload_id": upload_id},
        )

    def _complete(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        part_ids = httpx.Response(200, content=request.read()).json()["part_ids"]
        upload = self.uploads[upload_id]
        data = b"".join(self.parts[p] for p in part_ids)
        file = _file(f"file-{len(self.files) + 1}", upload["filename"], len(data))
        self.files.append(file)
        self.stored.append(data)
        upload.update(status="completed", file=file)
        return httpx.Response(200, json=upload)

    def _cancel(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        del request
        fault = self._fault("cancel")
        if fault is not None:
            return fault.apply()
        self.uploads[upload_id]["status"] = "cancelled"
        return httpx.Response(200, json=self.uploads[upload_id])


@pytest.fixture
def files(api: respx.Router) -> FakeFiles:
    return FakeFiles(api)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def policy(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(jitter=0.0, sleep=sleeps.sleep, async_sleep=sleeps.async_sleep)


def test_upload_names_the_file_by_content_hash(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _dataset()
    file_id = upload_dataset(ds, client=client, retry=policy)
    assert file_id == "file-1"
    assert files.stored == [ds.to_jsonl_bytes()]
    assert files.files[0]["filename"] == f"finetune_kit-chat-sha256-{ds.content_hash()}.jsonl"


def test_an_identical_upload_is_reused_even_by_a_fresh_process(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _dataset()
    first = upload_dataset(ds, client=client, retry=policy)
    # A new process knows nothing in memory: the service's file list is the record.
    again = upload_dataset(_dataset(), client=client, retry=policy)
    assert again == first
    assert files.calls["create"] == 1


def test_reuse_needs_same_hash_size_and_a_healthy_file(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _dataset()
    name = hashed_filename(ds, ds.content_hash())
    size = len(ds.to_jsonl_bytes())
    files.files = [
        _file("file-broken", name, size, status="error"),
        _file("file-short", name, size - 1),
        _file("file-other", name.replace(ds.content_hash(), "0" * 64), size),
    ]
    assert upload_dataset(ds, client=client, retry=policy) == "file-4"


def test_reuse_looks_through_every_page(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _dataset()
    name = hashed_filename(ds, ds.content_hash())
    files.files = [_file("file-match", name, len(ds.to_jsonl_bytes()))]
    files.files += [_file(f"file-x{i}", f"x{i}.jsonl", 1) for i in range(1500)]
    assert upload_dataset(ds, client=client, retry=policy) == "file-match"
    assert files.calls["list"] == 2


def test_file_backed_dataset_keeps_its_name(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy, tmp_path: Path
) -> None:
    path = tmp_path / "support tickets.jsonl"
    _dataset().to_jsonl(path)
    upload_dataset(Dataset.from_jsonl(path), client=client, retry=policy)
    assert files.files[0]["filename"].startswith("support_tickets-sha256-")


def test_invalid_data_is_refused_before_any_request(
    api: respx.Router, client: openai.OpenAI
) -> None:
    bad = Dataset.from_records([{"messages": [{"role": "user", "content": "hi"}]}] * 10)
    with pytest.raises(DatasetValidationError):
        upload_dataset(bad, client=client)
    assert not api.calls


def test_validation_can_be_skipped(files: FakeFiles, client: openai.OpenAI) -> None:
    bad = Dataset.from_records([{"messages": [{"role": "user", "content": "hi"}]}] * 10)
    assert upload_dataset(bad, client=client, validate=False) == "file-1"
    assert files.stored == [bad.to_jsonl_bytes()]


def test_dataset_upload_method_delegates(files: FakeFiles, client: openai.OpenAI) -> None:
    assert _dataset().upload(client=client) == "file-1"
    assert len(files.files) == 1


def test_ambiguous_failure_does_not_store_twice(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    files.faults["create"] = [Fault(error=httpx.ConnectError("reset"), after=True)]
    file_id = upload_dataset(_dataset(), client=client, retry=policy)
    assert [f["id"] for f in files.files] == [file_id]
    assert files.calls["create"] == 1
    assert sleeps.waits == [0.5]


def test_rate_limited_upload_is_retried(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    files.faults["create"] = [Fault(response=error_response(429, retry_after="4"))]
    upload_dataset(_dataset(), client=client, retry=policy)
    assert sleeps.waits == [4.0]
    assert len(files.files) == 1


def test_large_files_go_through_the_uploads_api_in_parts(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _dataset()
    data = ds.to_jsonl_bytes()
    file_id = upload_dataset(
        ds, client=client, retry=policy, max_direct=len(data) - 1, part_size=200
    )
    assert files.calls.get("create", 0) == 0
    assert len(files.parts) == -(-len(data) // 200)
    assert files.stored == [data]  # the parts reassemble to exactly the dataset
    assert file_id == files.files[0]["id"]
    assert files.files[0]["filename"].endswith(f"-sha256-{ds.content_hash()}.jsonl")


def test_a_failed_part_cancels_the_upload_and_says_so(
    files: FakeFiles,
    client: openai.OpenAI,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files.faults["part"] = [None, Fault(response=error_response(400, message="bad part"))]
    with (
        caplog.at_level(logging.WARNING, logger="finetune_kit"),
        pytest.raises(openai.BadRequestError),
    ):
        upload_dataset(_dataset(), client=client, retry=policy, max_direct=10, part_size=200)
    assert files.uploads["upload-1"]["status"] == "cancelled"
    assert "failed after 1 part(s); cancelled it" in caplog.text
    assert files.files == []


def test_an_upload_that_cannot_be_cancelled_is_reported(
    files: FakeFiles,
    client: openai.OpenAI,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files.faults["part"] = [Fault(response=error_response(400))]
    files.faults["cancel"] = [Fault(response=error_response(404))]
    with (
        caplog.at_level(logging.WARNING, logger="finetune_kit"),
        pytest.raises(openai.BadRequestError),
    ):
        upload_dataset(_dataset(), client=client, retry=policy, max_direct=10, part_size=200)
    assert "could not be cancelled" in caplog.text
    assert "expires on its own" in caplog.text


async def test_async_upload_reuses_and_uploads_in_parts(
    files: FakeFiles, async_client: openai.AsyncOpenAI, policy: RetryPolicy
) -> None:
    ds = _dataset()
    first = await aupload_dataset(
        ds, client=async_client, retry=policy, max_direct=10, part_size=300
    )
    assert files.stored == [ds.to_jsonl_bytes()]
    assert await ds.aupload(client=async_client) == first
