"""Uploading datasets: validation first, reuse by content hash, files API or uploads in parts."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from finetune_kit import Dataset, DatasetError, DatasetValidationError, RetryPolicy
from finetune_kit.datasets import _upload as upload_module
from finetune_kit.datasets._upload import aupload_dataset, hashed_filename, upload_dataset

from .fake_openai import FakeFiles, Fault, Sleeps, error_response, file_json, page
from .threads import record_dataset_threads

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import respx


def _dataset() -> Dataset:
    texts = [f"ticket {i}: my card was charged twice" for i in range(12)]
    return Dataset.from_labels(texts, ["billing" if i % 2 else "other" for i in range(12)])


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


def test_reuse_needs_same_hash_size_and_a_healthyfile_json(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _dataset()
    name = hashed_filename(ds, ds.content_hash())
    size = len(ds.to_jsonl_bytes())
    files.files = [
        file_json("file-broken", name, size, status="error"),
        file_json("file-short", name, size - 1),
        file_json("file-other", name.replace(ds.content_hash(), "0" * 64), size),
    ]
    assert upload_dataset(ds, client=client, retry=policy) == "file-4"


def _uploaded_before(files: FakeFiles, file_id: str, others: int) -> Dataset:
    """The dataset, which the service already holds as ``file_id``, then ``others`` newer files."""
    ds = _dataset()
    name = hashed_filename(ds, ds.content_hash())
    identical = file_json(file_id, name, len(ds.to_jsonl_bytes()))
    files.files = [identical, *(file_json(f"file-x{i}", f"x{i}.jsonl", 1) for i in range(others))]
    return ds


def test_reuse_looks_through_every_page(
    files: FakeFiles, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _uploaded_before(files, "file-match", 1500)
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


def test_more_than_the_uploads_api_takes_is_refused_before_any_request(
    api: respx.Router, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_module, "UPLOADS_API_LIMIT", 100)
    with pytest.raises(DatasetError, match="at most 100"):
        upload_dataset(_dataset(), client=client)
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


# --- bounded look-ups, streaming, exactly once on the uploads API ----------------------------


class Service(FakeFiles):
    """FakeFiles with pages capped at 100 files (as servers may cap them), faults on complete,
    file deletion, and hooks run when a part arrives or after a file is created."""

    def __init__(self, router: respx.Router) -> None:
        super().__init__(router)
        self.on_part: list[Callable[[], None]] = []
        self.after_create: list[Callable[[], None]] = []
        router.delete(path__regex=r"/files/(?P<file_id>[^/]+)$").mock(side_effect=self._delete)

    def _list(self, request: httpx.Request) -> httpx.Response:
        self.calls["list"] = self.calls.get("list", 0) + 1
        newest_first = list(reversed(self.files))
        after = request.url.params.get("after")
        limit = min(100, int(request.url.params["limit"]))
        start = next((i + 1 for i, f in enumerate(newest_first) if f["id"] == after), 0)
        chunk = newest_first[start : start + limit]
        return httpx.Response(200, json=page(chunk, has_more=start + limit < len(newest_first)))

    def _part(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        if self.on_part:
            self.on_part.pop(0)()
        return super()._part(request, upload_id)

    def _create(self, request: httpx.Request) -> httpx.Response:
        response = super()._create(request)
        if self.after_create:
            self.after_create.pop(0)()
        return response

    def _complete(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        fault = self._fault("complete")
        if fault is not None and not fault.after:
            return fault.apply()
        response = super()._complete(request, upload_id)
        return fault.apply() if fault is not None else response

    def _delete(self, request: httpx.Request, file_id: str) -> httpx.Response:
        del request
        self.calls["delete"] = self.calls.get("delete", 0) + 1
        index = next(i for i, f in enumerate(self.files) if f["id"] == file_id)
        del self.files[index], self.stored[index]
        return httpx.Response(200, json={"id": file_id, "object": "file", "deleted": True})


@pytest.fixture
def service(api: respx.Router) -> Service:
    return Service(api)


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """A file-backed dataset's file, about 1.3 KB: several parts of 200 bytes."""
    path = tmp_path / "tickets.jsonl"
    _dataset().to_jsonl(path)
    return path


@pytest.fixture
def never_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a dataset's bytes into memory at once fails the test."""

    def whole(_: Dataset) -> bytes:
        raise AssertionError("a file-backed dataset was read into memory whole")

    monkeypatch.setattr(Dataset, "to_jsonl_bytes", whole)


def test_finding_an_earlier_upload_costs_a_bounded_number_of_requests(
    service: Service, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    ds = _uploaded_before(service, "file-old-match", 2_000)
    # The identical file is older than the pages looked at: uploaded again, at bounded cost.
    assert upload_dataset(ds, client=client, retry=policy) == "file-2002"
    assert service.calls["list"] <= 5
    # The new upload is the newest file: found on the first page.
    service.calls.clear()
    assert upload_dataset(ds, client=client, retry=policy) == "file-2002"
    assert service.calls == {"list": 1}


@pytest.mark.usefixtures("never_whole")
def test_a_file_is_streamed_through_the_files_api(
    service: Service, client: openai.OpenAI, policy: RetryPolicy, big: Path
) -> None:
    file_id = upload_dataset(Dataset.from_jsonl(big), client=client, retry=policy)
    assert service.stored == [big.read_bytes()]
    assert service.files[0]["id"] == file_id


@pytest.mark.usefixtures("never_whole")
def test_a_file_is_streamed_in_parts_each_retried_from_its_start(
    service: Service, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps, big: Path
) -> None:
    service.faults["part"] = [None, Fault(response=error_response(500))]
    upload_dataset(
        Dataset.from_jsonl(big), client=client, retry=policy, max_direct=10, part_size=200
    )
    assert service.stored == [big.read_bytes()]  # the retried part was read again, whole
    assert len(service.parts) == -(-big.stat().st_size // 200)
    assert len(sleeps.waits) == 1


def test_a_lost_reply_to_complete_does_not_store_twice(
    service: Service, client: openai.OpenAI, policy: RetryPolicy, big: Path
) -> None:
    service.faults["complete"] = [Fault(error=httpx.ConnectError("reset"), after=True)]
    file_id = upload_dataset(
        Dataset.from_jsonl(big), client=client, retry=policy, max_direct=10, part_size=200
    )
    assert [f["id"] for f in service.files] == [file_id]
    assert service.calls["complete"] == 1
    assert service.stored == [big.read_bytes()]


def _rewriter(path: Path) -> Callable[[], None]:
    """A hook that changes the file at ``path`` (one more line), for the service to call."""

    def rewrite() -> None:
        with path.open("a") as file:
            file.write('{"messages": []}\n')

    return rewrite


def test_a_file_rewritten_during_an_upload_in_parts_is_abandoned(
    service: Service, client: openai.OpenAI, policy: RetryPolicy, big: Path
) -> None:
    service.on_part.append(_rewriter(big))
    with pytest.raises(DatasetError, match="changed while it was being uploaded"):
        upload_dataset(
            Dataset.from_jsonl(big), client=client, retry=policy, max_direct=10, part_size=200
        )
    assert service.files == []
    assert service.uploads["upload-1"]["status"] == "cancelled"


def test_a_file_rewritten_during_a_direct_upload_is_deleted(
    service: Service, client: openai.OpenAI, policy: RetryPolicy, big: Path
) -> None:
    service.after_create.append(_rewriter(big))
    with pytest.raises(DatasetError, match="changed while it was being uploaded"):
        upload_dataset(Dataset.from_jsonl(big), client=client, retry=policy)
    assert service.files == []
    assert service.calls["delete"] == 1


@pytest.fixture
def big_bytes(big: Path) -> bytes:
    return big.read_bytes()


async def test_async_upload_streams_a_file(
    service: Service,
    async_client: openai.AsyncOpenAI,
    policy: RetryPolicy,
    big: Path,
    big_bytes: bytes,
) -> None:
    ds, expected = Dataset.from_jsonl(big), big_bytes
    await aupload_dataset(ds, client=async_client, retry=policy, max_direct=10, part_size=300)
    await aupload_dataset(Dataset.from_records(list(ds)[:11]), client=async_client, retry=policy)
    assert service.stored[0] == expected
    assert len(service.stored) == 2


async def test_async_upload_does_its_dataset_work_off_the_loop_thread(
    files: FakeFiles,
    async_client: openai.AsyncOpenAI,
    policy: RetryPolicy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Validating, hashing and reading the file run in a worker thread: an app's event loop
    # keeps serving other tasks while a large file is checked and uploaded.
    path = tmp_path / "train.jsonl"
    _dataset().to_jsonl(path)
    ds = Dataset.from_jsonl(path)
    where = record_dataset_threads(monkeypatch, lambda name: not name.startswith("__"))
    loop_thread = threading.get_ident()
    file_id = await ds.aupload(client=async_client, retry=policy)
    assert [f["id"] for f in files.files] == [file_id]
    names = {name for name, _ in where}
    assert {"validate", "sha256"} <= names
    on_loop = sorted({name for name, ident in where if ident == loop_thread} - {"aupload"})
    assert on_loop == [], f"Dataset work on the event loop's thread: {on_loop}"
