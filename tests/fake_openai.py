"""A fake of the OpenAI API on a respx router, for the SDK-side tests (no tests here).

One module for everything the library's tests put in place of the service:

- SDK exceptions built by hand (:func:`status_error`, ...) for the retry tests;
- :class:`Sleeps`, a recorder that stands in for ``sleep`` and the clock of a retry policy;
- the JSON bodies the service sends (jobs, events, files, pages, errors, chat completions),
  so the tests exercise the SDK's own parsing too, and a job's :func:`checkpoint` as the
  library's model;
- small in-memory services on the ``api`` router of ``tests/conftest.py``: fine-tuning jobs
  (:class:`FakeJobs`), fine-tune files and uploads (:class:`FakeFiles`), batch files and
  batches (:class:`FakeBatchService`), each with injectable faults.

Chat completions are mocked per test on ``api`` with :func:`ok` / :func:`refused` replies.
The local backend's own tests use ``tests/local/helpers.py`` instead (real HTTP, real app).

openai 3.x builds its errors on httpx2 objects, openai 2.x on httpx ones; the helpers pick
the module the installed SDK uses, so every test is written once.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx
import openai

from finetune_kit import Checkpoint, Classification, MetricsRow, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import respx

    from finetune_kit import ClassificationError

OPENAI_MAJOR = int(openai.__version__.split(".", 1)[0])
_http: Any = importlib.import_module("httpx2" if OPENAI_MAJOR >= 3 else "httpx")
_core: Any = importlib.import_module("httpcore2" if OPENAI_MAJOR >= 3 else "httpcore")

BASE_URL = "https://api.test/v1"
URL = f"{BASE_URL}/fine_tuning/jobs"

#: The labels the classify and batch fakes answer with by default.
LABELS = ("cat", "dog", "bird")


# --- SDK errors, built by hand ---------------------------------------------------------------


def request() -> Any:
    """A request object of the kind the installed SDK uses."""
    return _http.Request("POST", URL)


def _error_body(
    message: str, *, code: str | None, param: str | None = None, error_type: str = "error"
) -> dict[str, Any]:
    return {"message": message, "type": error_type, "param": param, "code": code}


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
    body = _error_body(message, code=code)
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


class Crash(Exception):
    """The process dies while waiting (what a kill or a reboot does to a long wait)."""


# --- bodies the service sends ----------------------------------------------------------------


def page(data: list[dict[str, Any]], *, has_more: bool = False) -> dict[str, Any]:
    """A cursor page."""
    return {"object": "list", "data": data, "has_more": has_more}


def paged(
    request: httpx.Request, items: list[dict[str, Any]], *, limit: int | None = None
) -> dict[str, Any]:
    """The page of ``items`` (in listing order) that ``request`` asks for with ``after`` and
    ``limit`` (``limit`` given here overrides the request's: a server with a page size)."""
    after = request.url.params.get("after")
    size = limit or int(request.url.params.get("limit", "20"))
    ids = [item["id"] for item in items]
    start = ids.index(after) + 1 if after in ids else 0
    return page(items[start : start + size], has_more=start + size < len(items))


def error_response(
    status: int,
    *,
    code: str | None = None,
    message: str = "boom",
    param: str | None = None,
    error_type: str = "error",
    **headers: str,
) -> httpx.Response:
    """An error reply in the service's shape (header names with ``_`` for ``-``)."""
    body = _error_body(message, code=code, param=param, error_type=error_type)
    return httpx.Response(
        status,
        json={"error": body},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def checkpoint(
    step: int, model: str = "ft:gpt-4o-mini:org::abc", *, created_at: int = 1, **metrics: float
) -> Checkpoint:
    """A job's :class:`~finetune_kit.Checkpoint` at ``step``: ``model`` with its
    ``:ckpt-step-N`` tail, and these metrics."""
    return Checkpoint(
        id=f"ckpt-{step}",
        step=step,
        model=f"{model}:ckpt-step-{step}",
        created_at=created_at,
        metrics=MetricsRow.model_validate({"step": step, **metrics}),
    )


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


def file_json(
    file_id: str,
    filename: str,
    size: int,
    status: str = "processed",
    *,
    purpose: str = "fine-tune",
    created_at: int = 1,
) -> dict[str, Any]:
    """A file as the service lists it."""
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "filename": filename,
        "purpose": purpose,
        "status": status,
    }


def completion(
    content: str | None,
    *,
    top: Sequence[tuple[str, float]] | None = None,
    logprob: float | None = None,
    prompt_tokens: int = 20,
    completion_tokens: int = 1,
    refusal: str | None = None,
    model: str = "gpt-4o-mini",
) -> dict[str, Any]:
    """A ``chat.completion`` body; ``top`` gives the first token's top_logprobs."""
    logprobs = None
    if top is not None and content is not None:
        chosen = logprob if logprob is not None else dict(top).get(content, -0.01)
        logprobs = {
            "content": [
                {
                    "token": content,
                    "bytes": list(content.encode()),
                    "logprob": chosen,
                    "top_logprobs": [
                        {"token": t, "bytes": list(t.encode()), "logprob": lp} for t, lp in top
                    ],
                }
            ],
            "refusal": None,
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": logprobs,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def ok(content: str | None, **kwargs: Any) -> httpx.Response:
    """A 200 response carrying :func:`completion` (keyword arguments as there)."""
    return httpx.Response(200, json=completion(content, **kwargs))


def refused(
    param: str | None, *, code: str | None = "unsupported_parameter", message: str | None = None
) -> httpx.Response:
    """The 400 OpenAI sends for a parameter a model does not take."""
    text = message or f"Unsupported parameter: '{param}' is not supported with this model."
    return error_response(
        400, code=code, message=text, param=param, error_type="invalid_request_error"
    )


# --- reading what the library sent -----------------------------------------------------------


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    """The JSON bodies of every request ``route`` saw, in order."""
    return [json.loads(call.request.content) for call in route.calls]


def system_prompt(body: dict[str, Any]) -> str:
    """The system message classify sent."""
    first = body["messages"][0]
    assert first["role"] == "system"
    content: str = first["content"]
    return content


def label_in(body: dict[str, Any], labels: Sequence[str] = LABELS) -> str | None:
    """The first of ``labels`` named in the last message of a request body."""
    text = body["messages"][-1]["content"]
    return next((label for label in labels if label in text), None)


def labels_of(results: list[Classification | ClassificationError]) -> list[str | None]:
    """Each result's label (None for a failure or an abstention)."""
    return [r.label if isinstance(r, Classification) else None for r in results]


# --- fine-tuning jobs ------------------------------------------------------------------------


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
        #: The service's clock for ``created_at`` (a fixed moment: no test reads the wall clock).
        self.now: Callable[[], float] = lambda: 1_800_000_000.0
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
                created_at=int(self.now()),
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
        return self._serve(
            "events", lambda: httpx.Response(200, json=paged(request, self.events.get(job_id, [])))
        )

    def _action(self, request: httpx.Request, job_id: str, action: str) -> httpx.Response:
        del request

        def work() -> httpx.Response:
            job = self.jobs[job_id]
            job["status"] = {"cancel": "cancelled", "pause": "paused", "resume": "queued"}[action]
            return httpx.Response(200, json=job)

        return self._serve("cancel" if action == "cancel" else action, work)


# --- fine-tune files and uploads -------------------------------------------------------------


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
        assert "limit" in request.url.params  # the library pages explicitly
        return httpx.Response(200, json=paged(request, list(reversed(self.files))))

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
        self._store(name.group(1).decode(), data)
        if fault is not None:
            return fault.apply()
        return httpx.Response(200, json=self.files[-1])

    def _store(self, filename: str, data: bytes) -> dict[str, Any]:
        file = file_json(f"file-{len(self.files) + 1}", filename, len(data))
        self.files.append(file)
        self.stored.append(data)
        return file

    def _upload(self, request: httpx.Request) -> httpx.Response:
        self.calls["upload"] = self.calls.get("upload", 0) + 1
        body = json.loads(request.read())
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
        part_ids = json.loads(request.read())["part_ids"]
        upload = self.uploads[upload_id]
        data = b"".join(self.parts[p] for p in part_ids)
        upload.update(status="completed", file=self._store(upload["filename"], data))
        return httpx.Response(200, json=upload)

    def _cancel(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        del request
        fault = self._fault("cancel")
        if fault is not None:
            return fault.apply()
        self.uploads[upload_id]["status"] = "cancelled"
        return httpx.Response(200, json=self.uploads[upload_id])


# --- batch files and batches -----------------------------------------------------------------

#: ``drop`` / ``500``: fail before the service acts; ``drop_after`` / ``500_after``: the
#: service acts, then the reply is lost or is a 500 - what idempotency keys are for.
BatchFault = Literal["drop", "500", "drop_after", "500_after"]

_NAME = re.compile(rb'filename="([^"]*)"')


def _not_found(file_id: str) -> httpx.Response:
    return error_response(
        404, message=f"No such File object: {file_id}", error_type="invalid_request_error"
    )


def _server_error() -> httpx.Response:
    return error_response(
        500,
        code="server_error",
        message="The server had an error",
        error_type="invalid_request_error",
    )


def answer_batch_line(body: dict[str, Any]) -> dict[str, Any]:
    """The batch output line's ``response`` for a request body ("boom" fails)."""
    label = label_in(body)
    if label is None:
        error = _error_body("boom", code=None, error_type="server_error")
        return {"status_code": 500, "request_id": "req_x", "body": {"error": error}}
    return {
        "status_code": 200,
        "request_id": "req_ok",
        "body": completion(label, top=[(label, math.log(0.8))]),
    }


@dataclass(eq=False)
class FakeBatchService:
    """Batch files and batches: a batch is in progress for ``polls_until_done`` polls, then
    ends as ``outcome`` (with output for the first ``answered`` requests); with listing
    (newest first, paged), metadata, deletion, a server clock of its own and faults.

    Attributes:
        faults: per step (``"upload"``, ``"create"``, ``"delete"``), the faults the next
            requests of that step meet, in order.
        server_time: the ``created_at`` the service stamps (its own clock).
        files: file id -> content (input files and the output/error files of batches).
        inputs: the request lines of each uploaded input file, in upload order.
        created: the parameters of each batch create the service performed.
        names: file id -> the uploaded file name.
        deleted: ids of deleted files, in order.
        listed: how many list requests were served, per endpoint.
        on_poll: called on each batch retrieve (a test advances its clock there).
        ignores_paging: behave like a compatible server that ignores ``after`` and leaves
            out ``has_more`` (every list request gets the first page again).
    """

    api: InitVar[respx.Router]
    _: KW_ONLY
    answer: Callable[[dict[str, Any]], dict[str, Any]] = answer_batch_line
    outcome: str = "completed"
    answered: int | None = None
    polls_until_done: int = 1
    server_time: float = 1_700_000_000.0
    page_size: int | None = None
    on_poll: Callable[[], object] | None = None
    ignores_paging: bool = False
    files: dict[str, bytes] = field(default_factory=dict, init=False)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    polls: dict[str, int] = field(default_factory=dict, init=False)
    inputs: list[list[dict[str, Any]]] = field(default_factory=list, init=False)
    created: list[dict[str, Any]] = field(default_factory=list, init=False)
    faults: dict[str, list[BatchFault]] = field(
        default_factory=lambda: {"upload": [], "create": [], "delete": []}, init=False
    )
    names: dict[str, str] = field(default_factory=dict, init=False)
    stamps: dict[str, int] = field(default_factory=dict, init=False)
    deleted: list[str] = field(default_factory=list, init=False)
    listed: dict[str, int] = field(default_factory=lambda: {"batches": 0, "files": 0}, init=False)

    def __post_init__(self, api: respx.Router) -> None:
        api.post("/files").mock(side_effect=self._upload)
        api.get("/files").mock(side_effect=self._list_files)
        api.get(url__regex=r".*/files/(?P<file_id>[^/?]+)$").mock(side_effect=self._retrieve_file)
        api.get(url__regex=r".*/files/(?P<file_id>[^/]+)/content$").mock(side_effect=self._content)
        api.delete(url__regex=r".*/files/(?P<file_id>[^/?]+)$").mock(side_effect=self._delete)
        api.post("/batches").mock(side_effect=self._create)
        api.get("/batches").mock(side_effect=self._list_batches)
        api.get(url__regex=r".*/batches/(?P<batch_id>[^/]+)$").mock(side_effect=self._retrieve)

    def _perform(
        self, step: str, act: Callable[[], httpx.Response], request: httpx.Request
    ) -> httpx.Response:
        fault = self.faults[step].pop(0) if self.faults[step] else None
        if fault == "drop":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "500":
            return _server_error()
        response = act()
        if fault == "drop_after":
            raise httpx.ConnectError("connection reset", request=request)
        if fault == "500_after":
            return _server_error()
        return response

    # --- files --------------------------------------------------------------------------------

    def _upload(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            lines = re.findall(rb'^\{"custom_id".*$', request.content, flags=re.MULTILINE)
            assert b'name="purpose"\r\n\r\nbatch' in request.content
            file_id = f"file-in-{len(self.files)}"
            self.files[file_id] = b"\n".join(lines) + b"\n"
            self.inputs.append([json.loads(line) for line in lines])
            found = _NAME.search(request.content)
            self.names[file_id] = found.group(1).decode() if found else "upload.jsonl"
            self.stamps[file_id] = int(self.server_time)
            return httpx.Response(200, json=self.file_json(file_id))

        return self._perform("upload", act, request)

    def file_json(self, file_id: str) -> dict[str, Any]:
        """The file object the service shows for ``file_id``."""
        return file_json(
            file_id,
            self.names.get(file_id, f"{file_id}.jsonl"),
            len(self.files[file_id]),
            purpose="batch" if file_id in self.names else "batch_output",
            created_at=self.stamps.get(file_id, int(self.server_time)),
        )

    def _list_files(self, request: httpx.Request) -> httpx.Response:
        self.listed["files"] += 1
        purpose = request.url.params.get("purpose")
        items = [self.file_json(f) for f in reversed(self.files)]
        items = [f for f in items if purpose in (None, f["purpose"])]
        if request.url.params.get("order") == "asc":
            items.reverse()
        return httpx.Response(200, json=self._page(request, items))

    def _retrieve_file(self, request: httpx.Request, file_id: str) -> httpx.Response:
        del request
        if file_id not in self.files:
            return _not_found(file_id)
        return httpx.Response(200, json=self.file_json(file_id))

    def _content(self, request: httpx.Request, file_id: str) -> httpx.Response:
        del request
        if file_id not in self.files:
            return _not_found(file_id)
        return httpx.Response(200, content=self.files[file_id])

    def _delete(self, request: httpx.Request, file_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            if file_id not in self.files:
                return _not_found(file_id)
            del self.files[file_id]
            self.deleted.append(file_id)
            return httpx.Response(200, json={"id": file_id, "object": "file", "deleted": True})

        return self._perform("delete", act, request)

    # --- batches ------------------------------------------------------------------------------

    def _create(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            params = json.loads(request.content)
            if params["input_file_id"] not in self.files:
                return _not_found(params["input_file_id"])
            self.created.append(params)
            batch_id = f"batch_{len(self.batches)}"
            total = len(self.files[params["input_file_id"]].splitlines())
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": params["endpoint"],
                "input_file_id": params["input_file_id"],
                "completion_window": params["completion_window"],
                "status": "validating",
                "created_at": int(self.server_time),
                "request_counts": {"total": total, "completed": 0, "failed": 0},
                "metadata": params.get("metadata"),
            }
            self.polls[batch_id] = 0
            return httpx.Response(200, json=self.batches[batch_id])

        return self._perform("create", act, request)

    def _retrieve(self, request: httpx.Request, batch_id: str) -> httpx.Response:
        del request
        if self.on_poll is not None:
            self.on_poll()  # a slow reply: time passes on the caller's clock
        batch = self.batches[batch_id]
        self.polls[batch_id] += 1
        if self.polls[batch_id] <= self.polls_until_done:
            batch["status"] = "in_progress"
        elif batch["status"] in ("validating", "in_progress"):
            self._finish(batch)
        return httpx.Response(200, json=batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        batch["status"] = self.outcome
        if self.outcome == "failed":
            batch["errors"] = {
                "object": "list",
                "data": [{"code": "invalid_model", "message": "no such model", "line": 1}],
            }
            return
        requests = [json.loads(line) for line in self.files[batch["input_file_id"]].splitlines()]
        if self.answered is not None:
            requests = requests[: self.answered]
        ok_lines: list[bytes] = []
        error_lines: list[bytes] = []
        for number, request in enumerate(requests):
            response = self.answer(request["body"])
            line = {
                "id": f"batch_req_{number}",
                "custom_id": request["custom_id"],
                "response": response,
                "error": None,
            }
            target = ok_lines if response["status_code"] == 200 else error_lines
            target.append(json.dumps(line).encode())
        for kind, lines in (("output", ok_lines), ("error", error_lines)):
            if lines:
                file_id = f"file-{kind}-{batch['id']}"
                self.files[file_id] = b"\n".join(lines) + b"\n"
                batch[f"{kind}_file_id"] = file_id
        batch["request_counts"]["completed"] = len(ok_lines)
        batch["request_counts"]["failed"] = len(error_lines)

    def _list_batches(self, request: httpx.Request) -> httpx.Response:
        self.listed["batches"] += 1
        items = list(reversed(self.batches.values()))
        return httpx.Response(200, json=self._page(request, items))

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        if sum(self.listed.values()) > 50:
            raise AssertionError("the client keeps listing: a look-up that never ends")
        if self.ignores_paging:
            return {"object": "list", "data": items[: self.page_size or 20]}
        return paged(request, items, limit=self.page_size)

    # --- what the tests look at -----------------------------------------------------------------

    def stored(self, purpose: str = "batch") -> list[str]:
        """The ids of the files still stored with ``purpose``."""
        return [f for f in self.files if self.file_json(f)["purpose"] == purpose]
