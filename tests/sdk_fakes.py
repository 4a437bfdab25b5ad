"""Building SDK objects by hand for the job/retry/upload tests (not a test module itself).

openai 3.x builds its errors on httpx2 objects, openai 2.x on httpx ones; these helpers pick
the module the installed SDK uses so every test is written once.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from typing import TYPE_CHECKING, Any

import httpx
import openai

from finetune_kit import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    import respx

OPENAI_MAJOR = int(openai.__version__.split(".", 1)[0])
_http: Any = importlib.import_module("httpx2" if OPENAI_MAJOR >= 3 else "httpx")
_core: Any = importlib.import_module("httpcore2" if OPENAI_MAJOR >= 3 else "httpcore")

URL = "https://api.test/v1/fine_tuning/jobs"


def request() -> Any:
    """A request object of the kind the installed SDK uses."""
    return _http.Request("POST", URL)


def status_error(
    status: int,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    message: str = "boom",
    request_id: str | None = "req_123",
) -> openai.APIStatusError:
    """The exception the SDK raises for an HTTP ``status`` response."""
    all_headers = dict(headers or {})
    if request_id:
        all_headers["x-request-id"] = request_id
    body = {"message": message, "type": "error", "param": None, "code": code}
    response = _http.Response(status, headers=all_headers, json={"error": body}, request=request())
    classes: dict[int, type[openai.APIStatusError]] = {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        403: openai.PermissionDeniedError,
        404: openai.NotFoundError,
        409: openai.ConflictError,
        422: openai.UnprocessableEntityError,
        429: openai.RateLimitError,
    }
    cls = classes.get(
        status, openai.InternalServerError if status >= 500 else openai.APIStatusError
    )
    return cls(f"Error code: {status} - {body}", response=response, body=body)


def connection_error() -> openai.APIConnectionError:
    """What the SDK raises when the connection drops."""
    return openai.APIConnectionError(request=request())


def timeout_error() -> openai.APITimeoutError:
    """What the SDK raises when a request times out."""
    return openai.APITimeoutError(request=request())


def transport_timeout() -> Exception:
    """A low-level read timeout, as respx's ``side_effect`` for the installed SDK's transport."""
    exc: Exception = _core.ReadTimeout("read timed out")
    return exc


class Sleeps:
    """A fake ``sleep``/``async_sleep`` pair that records waits and advances a fake clock."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def clock(self) -> float:
        return self.now

    def policy(self) -> RetryPolicy:
        """The default policy minus jitter, sleeping and timing through this recorder."""
        return RetryPolicy(
            jitter=0.0, sleep=self.sleep, async_sleep=self.async_sleep, clock=self.clock
        )


# --- a fake fine-tuning service behind the `api` respx router --------------------------------


def job_json(
    job_id: str = "ftjob-1",
    *,
    status: str = "queued",
    model: str = "gpt-4o-mini-2024-07-18",
    fine_tuned_model: str | None = None,
    error: dict[str, object] | None = None,
    hyperparameters: dict[str, object] | None = None,
    method: dict[str, object] | None = None,
    metadata: dict[str, str] | None = None,
    result_files: list[str] | None = None,
    estimated_finish: int | None = None,
    trained_tokens: int | None = None,
    created_at: int = 1_800_000_000,
) -> dict[str, Any]:
    """A fine-tuning job as the service returns it."""
    return {
        "id": job_id,
        "object": "fine_tuning.job",
        "created_at": created_at,
        "error": error,
        "fine_tuned_model": fine_tuned_model,
        "finished_at": None,
        "hyperparameters": hyperparameters,
        "method": method or {"type": "supervised", "supervised": {"hyperparameters": {}}},
        "model": model,
        "organization_id": "org-test",
        "result_files": result_files or [],
        "seed": 42,
        "status": status,
        "trained_tokens": trained_tokens,
        "training_file": "file-train",
        "validation_file": None,
        "estimated_finish": estimated_finish,
        "integrations": None,
        "metadata": metadata,
    }


def event_json(
    event_id: str,
    created_at: int,
    message: str = "",
    *,
    data: dict[str, object] | None = None,
    level: str = "info",
) -> dict[str, Any]:
    """A job event; ``data`` makes it a metrics event."""
    return {
        "id": event_id,
        "object": "fine_tuning.job.event",
        "created_at": created_at,
        "level": level,
        "message": message or (f"Step {data.get('step')}" if data else "working"),
        "data": data,
        "type": "metrics" if data else "message",
    }


def page(data: list[dict[str, Any]], *, has_more: bool = False) -> dict[str, Any]:
    """A cursor page."""
    return {"object": "list", "data": data, "has_more": has_more}


class Fault:
    """What a faulty call does instead of (or, with ``after``, after) its normal work."""

    def __init__(
        self,
        *,
        response: httpx.Response | None = None,
        error: Exception | None = None,
        after: bool = False,
    ) -> None:
        self.response = response
        self.error = error
        self.after = after

    def apply(self) -> httpx.Response:
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def error_response(
    status: int, *, code: str | None = None, message: str = "boom", **headers: str
) -> httpx.Response:
    """An error reply in the service's shape (header names with ``_`` for ``-``)."""
    body = {"error": {"message": message, "type": "error", "param": None, "code": code}}
    return httpx.Response(
        status,
        json=body,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


class FakeJobs:
    """A small in-memory fine-tuning service on a respx router, with injectable faults.

    ``faults[name]`` holds the faults the next calls of that endpoint meet, in order; names:
    ``create``, ``list``, ``retrieve``, ``events``, ``cancel``.
    """

    def __init__(self, router: respx.Router) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}  # newest first, like the service
        self.created: list[dict[str, Any]] = []  # request bodies of jobs actually created
        self.faults: dict[str, list[Fault]] = {}
        self.calls: dict[str, int] = {}
        #: Called with (job, how many retrieves so far) before each retrieve: moves jobs along.
        self.on_retrieve: Callable[[dict[str, Any], int], None] | None = None
        jobs = r"/fine_tuning/jobs"
        router.post(path__regex=jobs + "$").mock(side_effect=self._create)
        router.get(path__regex=jobs + "$").mock(side_effect=self._list)
        router.get(path__regex=jobs + r"/(?P<job_id>[^/]+)$").mock(side_effect=self._retrieve)
        router.get(path__regex=jobs + r"/(?P<job_id>[^/]+)/events$").mock(side_effect=self._events)
        router.post(path__regex=jobs + r"/(?P<job_id>[^/]+)/(?P<action>cancel|pause|resume)$").mock(
            side_effect=self._action
        )

    def add(self, job: dict[str, Any], events: list[dict[str, Any]] | None = None) -> None:
        """Put a job (and its events, newest first) on the service."""
        self.jobs[job["id"]] = job
        self.events[job["id"]] = list(events or [])

    def _serve(self, name: str, work: Callable[[], httpx.Response]) -> httpx.Response:
        self.calls[name] = self.calls.get(name, 0) + 1
        queue = self.faults.get(name) or []
        fault = queue.pop(0) if queue else None
        if fault is not None and not fault.after:
            return fault.apply()
        response = work()
        if fault is not None:
            return fault.apply()
        return response

    def _create(self, request: httpx.Request) -> httpx.Response:
        def work() -> httpx.Response:
            body = json.loads(request.content)
            job_id = f"ftjob-{len(self.jobs) + 1}"
            job = job_json(
                job_id,
                status="validating_files",
                model=body["model"],
                metadata=body.get("metadata"),
                created_at=int(time.time()),
            )
            self.jobs[job_id] = job
            self.created.append(body)
            return httpx.Response(200, json=job)

        return self._serve("create", work)

    def _list(self, request: httpx.Request) -> httpx.Response:
        def work() -> httpx.Response:
            wanted = {
                key[len("metadata[") : -1]: value
                for key, value in request.url.params.items()
                if key.startswith("metadata[")
            }
            found = [
                job
                for job in reversed(self.jobs.values())
                if all((job.get("metadata") or {}).get(k) == v for k, v in wanted.items())
            ]
            return httpx.Response(200, json=page(found))

        return self._serve("list", work)

    def _retrieve(self, request: httpx.Request, job_id: str) -> httpx.Response:
        del request

        def work() -> httpx.Response:
            if job_id not in self.jobs:
                return error_response(404, code=None, message=f"No such job: {job_id}")
            if self.on_retrieve is not None:
                self.on_retrieve(self.jobs[job_id], self.calls["retrieve"])
            return httpx.Response(200, json=self.jobs[job_id])

        return self._serve("retrieve", work)

    def _events(self, request: httpx.Request, job_id: str) -> httpx.Response:
        def work() -> httpx.Response:
            events = self.events.get(job_id, [])
            after = request.url.params.get("after")
            limit = int(request.url.params.get("limit", "20"))
            start = next((i + 1 for i, e in enumerate(events) if e["id"] == after), 0)
            chunk = events[start : start + limit]
            return httpx.Response(200, json=page(chunk, has_more=start + limit < len(events)))

        return self._serve("events", work)

    def _action(self, request: httpx.Request, job_id: str, action: str) -> httpx.Response:
        del request

        def work() -> httpx.Response:
            job = self.jobs[job_id]
            job["status"] = {"cancel": "cancelled", "pause": "paused", "resume": "queued"}[action]
            return httpx.Response(200, json=job)

        return self._serve("cancel" if action == "cancel" else action, work)


def file_json(file_id: str, filename: str, size: int, status: str = "processed") -> dict[str, Any]:
    """A file as the service lists it."""
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
        file = file_json(f"file-{len(self.files) + 1}", name.group(1).decode(), len(data))
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
        file = file_json(f"file-{len(self.files) + 1}", upload["filename"], len(data))
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
