"""HTTP: parsing requests, routing them to the store, answering in the service's shape.

Paths are accepted under ``/v1`` (OpenAI), ``/openai`` (Azure, with ``?api-version=``) and
``/openai/v1`` (Azure's v1 API); Azure's ``/deployments/{name}/...`` prefix names the model.
Every response carries an ``x-request-id``; every failure is a JSON error body with the
status the service would use. Bodies are read fully before answering (or refused with 413
and the connection closed, so a client never waits on a half-read upload).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from ._completions import create_chat_completion
from ._errors import ApiError, bad_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._faults import Faults
    from ._store import Store

__all__ = ["App", "LocalHTTPServer"]

logger = logging.getLogger("finetune_kit")

_PREFIXES: Final = ("/openai/v1", "/openai", "/v1")
_DEPLOYMENT = re.compile(r"^/deployments/([^/]+)(/.*)$")


class Request:
    """What a route handler sees."""

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        params: tuple[str, ...],
        deployment: str | None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.params = params
        self.deployment = deployment

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (400 when it is not one)."""
        try:
            data = json.loads(self.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.)"
            ) from None
        if not isinstance(data, dict):
            raise bad_request("The request body must be a JSON object.")
        return data

    def form(self) -> dict[str, tuple[bytes, str | None]]:
        """The multipart form: field name -> (value, filename or None)."""
        return parse_multipart(self.headers.get("content-type", ""), self.body)


_DISPOSITION_PARAM = re.compile(r';\s*([\w*-]+)="((?:[^"\\]|\\.)*)"|;\s*([\w*-]+)=([^;\s]+)')


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str | None]]:
    """Parse a ``multipart/form-data`` body (400 on anything malformed)."""
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise bad_request("Expected a multipart/form-data body.")
    boundary = None
    for match in _DISPOSITION_PARAM.finditer(";" + rest):
        key = (match.group(1) or match.group(3) or "").lower()
        if key == "boundary":
            boundary = match.group(2) if match.group(2) is not None else match.group(4)
    if not boundary:
        raise bad_request("The multipart body has no boundary.")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise bad_request("The multipart body is malformed (missing closing boundary).")
    fields: dict[str, tuple[bytes, str | None]] = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n"):
            raise bad_request("The multipart body is malformed.")
        head, sep, value = chunk[2:].partition(b"\r\n\r\n")
        if not sep or not value.endswith(b"\r\n"):
            raise bad_request("The multipart body is malformed (bad part).")
        name = filename = None
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            key, _, header_value = line.partition(":")
            if key.strip().lower() != "content-disposition":
                continue
            for match in _DISPOSITION_PARAM.finditer(header_value[header_value.find(";") :]):
                pkey = (match.group(1) or match.group(3) or "").lower()
                pval = match.group(2) if match.group(2) is not None else match.group(4)
                if pkey == "name":
                    name = pval
                elif pkey == "filename":
                    filename = pval
        if name is None:
            raise bad_request("A multipart part has no name.")
        fields[name] = (value[:-2], filename)
    return fields


class App:
    """Routes: ``(method, path regex) -> handler``; handlers return ``(status, body)``."""

    routes: ClassVar[list[tuple[str, re.Pattern[str], str]]] = []

    def __init__(self, store: Store, *, faults: Faults | None, api_key: str | None) -> None:
        self.store = store
        self.faults = faults
        self._api_key = api_key

    def authorised(self, headers: dict[str, str]) -> bool:
        """Whether the request carries the configured key (always true without one)."""
        if self._api_key is None:
            return True
        given = headers.get("api-key") or ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), self._api_key.encode())

    def dispatch(self, request: Request) -> tuple[int, Any]:
        """Run the handler for ``request`` (ApiError for unknown routes)."""
        known_path = False
        for method, pattern, attr in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            known_path = True
            if method != request.method:
                continue
            request.params = tuple(unquote(g) for g in match.groups())
            self.store.advance()
            handler: Callable[[Request], tuple[int, Any]] = getattr(self, attr)
            return handler(request)
        if known_path:
            raise ApiError(405, f"Method {request.method} is not allowed on {request.path}.")
        raise ApiError(404, f"Invalid URL ({request.method} {request.path})")

    # ----- files
    def files_create(self, req: Request) -> tuple[int, Any]:
        form = req.form()
        if "file" not in form or form["file"][1] is None:
            raise bad_request("Missing required parameter: 'file'.", param="file")
        if "purpose" not in form:
            raise bad_request("Missing required parameter: 'purpose'.", param="purpose")
        data, filename = form["file"]
        purpose = form["purpose"][0].decode("utf-8", errors="replace")
        return 200, self.store.create_file(filename=filename or "file", purpose=purpose, data=data)

    def files_list(self, req: Request) -> tuple[int, Any]:
        q = req.query
        return 200, self.store.list_files(
            purpose=q.get("purpose"),
            after=q.get("after"),
            limit=q.get("limit"),
            order=q.get("order"),
        )

    def files_get(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.get_file(req.params[0])

    def files_delete(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.delete_file(req.params[0])

    def files_content(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.file_content(req.params[0])

    # ----- uploads
    def uploads_create(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.create_upload(req.json())

    def uploads_part(self, req: Request) -> tuple[int, Any]:
        form = req.form()
        if "data" not in form:
            raise bad_request("Missing required parameter: 'data'.", param="data")
        return 200, self.store.add_upload_part(req.params[0], form["data"][0])

    def uploads_complete(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.complete_upload(req.params[0], req.json())

    def uploads_cancel(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.cancel_upload(req.params[0])

    # ----- fine-tuning
    def jobs_create(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.create_job(req.json())

    def jobs_list(self, req: Request) -> tuple[int, Any]:
        metadata: dict[str, str] | None = None
        for key, value in req.query.items():
            found = re.fullmatch(r"metadata\[(.*)\]", key)
            if found:
                metadata = metadata or {}
                metadata[found.group(1)] = value
        if req.query.get("metadata") == "null":
            metadata = {}
        return 200, self.store.list_jobs(
            after=req.query.get("after"), limit=req.query.get("limit"), metadata=metadata
        )

    def jobs_get(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.get_job(req.params[0])

    def jobs_cancel(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.cancel_job(req.params[0])

    def jobs_pause(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.pause_job(req.params[0])

    def jobs_resume(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.resume_job(req.params[0])

    def jobs_events(self, req: Request) -> tuple[int, Any]:
        q = req.query
        return 200, self.store.list_events(
            req.params[0], after=q.get("after"), limit=q.get("limit")
        )

    def jobs_checkpoints(self, req: Request) -> tuple[int, Any]:
        q = req.query
        return 200, self.store.list_checkpoints(
            req.params[0], after=q.get("after"), limit=q.get("limit")
        )

    # ----- models
    def models_list(self, req: Request) -> tuple[int, Any]:
        del req
        return 200, self.store.list_models()

    def models_get(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.get_model(req.params[0])

    def models_delete(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.delete_model(req.params[0])

    # ----- chat
    def chat_create(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        if req.deployment is not None:
            body["model"] = req.deployment
        return 200, create_chat_completion(self.store, body)

    # ----- batches
    def batches_create(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.create_batch(req.json())

    def batches_list(self, req: Request) -> tuple[int, Any]:
        q = req.query
        return 200, self.store.list_batches(after=q.get("after"), limit=q.get("limit"))

    def batches_get(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.get_batch(req.params[0])

    def batches_cancel(self, req: Request) -> tuple[int, Any]:
        return 200, self.store.cancel_batch(req.params[0])


_ID = r"([^/]+)"
App.routes = [
    (method, re.compile(path.replace("{id}", _ID)), attr)
    for method, path, attr in [
        ("POST", "/files", "files_create"),
        ("GET", "/files", "files_list"),
        ("GET", "/files/{id}", "files_get"),
        ("DELETE", "/files/{id}", "files_delete"),
        ("GET", "/files/{id}/content", "files_content"),
        ("POST", "/uploads", "uploads_create"),
        ("POST", "/uploads/{id}/parts", "uploads_part"),
        ("POST", "/uploads/{id}/complete", "uploads_complete"),
        ("POST", "/uploads/{id}/cancel", "uploads_cancel"),
        ("POST", "/fine_tuning/jobs", "jobs_create"),
        ("GET", "/fine_tuning/jobs", "jobs_list"),
        ("GET", "/fine_tuning/jobs/{id}", "jobs_get"),
        ("POST", "/fine_tuning/jobs/{id}/cancel", "jobs_cancel"),
        ("POST", "/fine_tuning/jobs/{id}/pause", "jobs_pause"),
        ("POST", "/fine_tuning/jobs/{id}/resume", "jobs_resume"),
        ("GET", "/fine_tuning/jobs/{id}/events", "jobs_events"),
        ("GET", "/fine_tuning/jobs/{id}/checkpoints", "jobs_checkpoints"),
        ("GET", "/models", "models_list"),
        ("GET", "/models/{id}", "models_get"),
        ("DELETE", "/models/{id}", "models_delete"),
        ("POST", "/chat/completions", "chat_create"),
        ("POST", "/batches", "batches_create"),
        ("GET", "/batches", "batches_list"),
        ("GET", "/batches/{id}", "batches_get"),
        ("POST", "/batches/{id}/cancel", "batches_cancel"),
    ]
]


class LocalHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its app and can close its open connections."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when an async client opens
    # dozens at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.connections: set[socket.socket] = set()
        self.handlers: set[threading.Thread] = set()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def close_connections(self, *, wait: float = 2.0) -> None:
        """Shut every open connection and wait (up to ``wait`` s) for their threads to end.

        Clients must not keep talking to a stopped server over a kept-alive connection, and a
        stopped server should leave no threads behind (code that forks checks for them).
        """
        for sock in list(self.connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connections.clear()
        deadline = time.monotonic() + wait
        for thread in list(self.handlers):
            thread.join(max(0.0, deadline - time.monotonic()))


class _Dropped(Exception):
    """Close the connection without answering (an injected fault)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "finetune-kit-local"
    sys_version = ""
    server: LocalHTTPServer
    timeout = 120  # an idle keep-alive connection is closed after this long

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm and
        # the client's delayed ACK stall every keep-alive response by ~40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)
        self.server.handlers.add(threading.current_thread())

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        self.server.handlers.discard(threading.current_thread())
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("local backend: " + format, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        # A HEAD response has no body, so an error body would desynchronise a kept-alive
        # connection: answer 405 with headers only and close.
        self.close_connection = True
        self.send_response(405)
        self.send_header("content-length", "0")
        self.send_header("connection", "close")
        self.end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own errors (bad request line, bad headers) in the service's JSON shape."""
        del explain
        self.close_connection = True
        # A request line too broken to name its version leaves the stdlib's HTTP/0.9
        # default, which would suppress the status line and headers.
        self.request_version = "HTTP/1.1"
        error = ApiError(code, message or "Bad request.", code=None)
        self._send(code, error.body(), "req_" + secrets.token_hex(16), time.monotonic())

    def _read_body(self) -> bytes:
        limit = self.server.max_body_bytes
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise bad_request("Malformed chunked request body.") from None
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                size += n
                if size > limit:
                    self.close_connection = True
                    raise _too_large(limit)
                parts.append(self.rfile.read(n))
                self.rfile.readline(1024)
        raw = self.headers.get("content-length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise bad_request("Invalid Content-Length header.") from None
        if length < 0:
            self.close_connection = True
            raise bad_request("Invalid Content-Length header.")
        if length > limit:
            # The body is left unread: the connection cannot be reused.
            self.close_connection = True
            raise _too_large(limit)
        return self.rfile.read(length)

    def _handle(self) -> None:
        request_id = "req_" + secrets.token_hex(16)
        app = self.server.app
        started = time.monotonic()
        method = self.command
        split = urlsplit(self.path)
        path = split.path
        for prefix in _PREFIXES:
            if path.startswith(prefix + "/"):
                path = path[len(prefix) :]
                break
        else:
            path = ""
        deployment = None
        found = _DEPLOYMENT.match(path)
        if found:
            deployment, path = unquote(found.group(1)), found.group(2)
        headers = {k.lower(): v for k, v in self.headers.items()}
        after_kind = None
        try:
            if not path:
                self._drain()
                raise ApiError(404, f"Invalid URL ({method} {split.path})")
            if not app.authorised(headers):
                self._drain()
                raise ApiError(
                    401,
                    "Incorrect API key provided. You can find your API key in the local "
                    "backend's configuration.",
                    code="invalid_api_key",
                )
            rule = app.faults.pick(method, path) if app.faults is not None else None
            if rule is not None:
                after_kind = _before(rule, self)
            body = self._read_body()
            query = dict(parse_qsl(split.query, keep_blank_values=True))
            request = Request(method, path, query, headers, body, (), deployment)
            status, payload = app.dispatch(request)
            if after_kind == "drop_after":
                raise _Dropped
            if after_kind == "error_after":
                raise ApiError(
                    500,
                    "The server had an error while processing your request. Sorry about that!",
                    type="server_error",
                )
            self._send(status, payload, request_id, started)
        except _Dropped:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except ApiError as exc:
            self._send(exc.status, exc.body(), request_id, started, exc.headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            logger.exception("local backend: unexpected error on %s %s", method, path)
            error = ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
            )
            self._send(500, error.body(), request_id, started)

    def _drain(self) -> None:
        """Read (and drop) a small body so the connection stays usable; else close it."""
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= 1 << 20 and "chunked" not in self.headers.get("transfer-encoding", ""):
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _send(
        self,
        status: int,
        payload: Any,
        request_id: str,
        started: float,
        extra: dict[str, str] | None = None,
    ) -> None:
        if isinstance(payload, bytes):
            data, content_type = payload, "application/octet-stream"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.send_header("x-request-id", request_id)
            self.send_header("openai-processing-ms", str(int((time.monotonic() - started) * 1000)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"The request body is larger than the local backend accepts ({limit} bytes).",
        code="request_too_large",
    )


def _before(rule: Any, handler: _Handler) -> str | None:
    """Apply a fault that acts before the request is performed; return a kind for after."""
    kind = rule.kind
    if kind == "slow":
        time.sleep(rule.delay)
        return None
    if kind in ("drop_after", "error_after"):
        return str(kind)
    handler._drain()
    if kind == "drop":
        raise _Dropped
    if kind == "rate_limit":
        wait = rule.retry_after
        raise ApiError(
            429,
            f"Rate limit reached for requests on the local backend. Please try again in {wait:g}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after": f"{wait:g}", "retry-after-ms": str(int(wait * 1000))},
        )
    if kind == "insufficient_quota":
        raise ApiError(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    if kind == "unavailable":
        raise ApiError(
            503,
            "The server is overloaded or not ready yet.",
            type="server_error",
            code="service_unavailable",
        )
    raise ApiError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )
