"""The local backend's HTTP face: a Starlette app whose routes call the store.

Routing, request parsing and multipart bodies are Starlette's job (multipart through
python-multipart); this module only says which route does what and how errors look.
Paths arrive here already stripped of their ``/v1`` / ``/openai`` prefix by
:class:`~finetune_kit.local._middleware.FrontDoor`, which also checks the key, limits body
sizes and stamps every response with an ``x-request-id``. Azure's control plane (the
deployments routes of :mod:`._arm`) is mounted at the root, ``/subscriptions/...``.

On the Azure paths a chat request names a *deployment* (in the URL or as ``model``): it is
answered by the model that deployment serves once provisioned; a tuned model without a
deployment gets Azure's 404 ``DeploymentNotFound``. The backend's base models need no
deployment and answer directly. The OpenAI paths (``/v1``) name models, as before.

Handlers parse the request on the event loop and run the store's work in a worker thread
(``run_in_threadpool``): the store takes its own locks and training never blocks the loop.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, TypeAlias

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._arm import arm_routes
from ._completions import create_chat_completion
from ._errors import ApiError, bad_request, not_found
from ._faults import FaultsMiddleware
from ._middleware import FrontDoor
from ._models import looks_like_base

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp

    from ._faults import Faults
    from ._store import Store

__all__ = ["build_app"]

logger = logging.getLogger("finetune_kit")

_METADATA_KEY = re.compile(r"metadata\[(.*)\]")

#: A route's work: the payload (JSON-able, or bytes) for a request.
Handler: TypeAlias = "Callable[[Request], Awaitable[Any]]"


async def _json(request: Request) -> dict[str, Any]:
    """The body as a JSON object (400 when it is not one)."""
    raw = await request.body()
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means "
            "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
            "payload, but what was sent was not valid JSON.)"
        ) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


async def _form(request: Request, *, max_part_size: int) -> dict[str, tuple[bytes, str | None]]:
    """The multipart form: field name -> (value, filename or None); 400 when malformed."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "multipart/form-data":
        raise bad_request("Expected a multipart/form-data body.")
    fields: dict[str, tuple[bytes, str | None]] = {}
    async with request.form(max_part_size=max_part_size) as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                fields[name] = (await value.read(), value.filename)
            else:
                fields[name] = (value.encode(), None)
    return fields


def _id(request: Request) -> str:
    return str(request.path_params["id"])


def _azure(request: Request) -> bool:
    """Whether the request came through Azure's data-plane paths (``/openai/...``)."""
    return getattr(request.state, "surface", None) == "azure"


class _Routes:
    """One method per route; each returns the JSON payload (or bytes) to send."""

    def __init__(self, store: Store, *, max_body_bytes: int) -> None:
        self.store = store
        self.max_body = max_body_bytes

    async def _run(self, work: Callable[[], Any]) -> Any:
        def advanced() -> Any:
            self.store.advance()
            return work()

        return await run_in_threadpool(advanced)

    # ----- files
    async def files_create(self, req: Request) -> Any:
        form = await _form(req, max_part_size=self.max_body)
        if "file" not in form or form["file"][1] is None:
            raise bad_request("Missing required parameter: 'file'.", param="file")
        if "purpose" not in form:
            raise bad_request("Missing required parameter: 'purpose'.", param="purpose")
        data, filename = form["file"]
        purpose = form["purpose"][0].decode("utf-8", errors="replace")
        return await self._run(
            lambda: self.store.files.create(filename=filename or "file", purpose=purpose, data=data)
        )

    async def files_list(self, req: Request) -> Any:
        q = req.query_params
        options = {key: q.get(key) for key in ("purpose", "after", "limit", "order")}
        return await self._run(lambda: self.store.files.list(**options))

    # ----- uploads
    async def uploads_create(self, req: Request) -> Any:
        body = await _json(req)
        return await self._run(lambda: self.store.files.create_upload(body))

    async def uploads_part(self, req: Request) -> Any:
        form = await _form(req, max_part_size=self.max_body)
        if "data" not in form:
            raise bad_request("Missing required parameter: 'data'.", param="data")
        return await self._run(lambda: self.store.files.add_upload_part(_id(req), form["data"][0]))

    async def uploads_complete(self, req: Request) -> Any:
        body = await _json(req)
        return await self._run(lambda: self.store.files.complete_upload(_id(req), body))

    # ----- fine-tuning
    async def jobs_create(self, req: Request) -> Any:
        body = await _json(req)
        azure = _azure(req)
        return await self._run(lambda: self.store.jobs.create(body, azure=azure))

    async def jobs_list(self, req: Request) -> Any:
        q = req.query_params
        metadata: dict[str, str] | None = None
        for key, value in q.multi_items():
            found = _METADATA_KEY.fullmatch(key)
            if found:
                metadata = metadata or {}
                metadata[found.group(1)] = value
        if q.get("metadata") == "null":
            metadata = {}
        return await self._run(
            lambda: self.store.jobs.list(
                after=q.get("after"), limit=q.get("limit"), metadata=metadata
            )
        )

    # ----- models
    async def models_list(self, req: Request) -> Any:
        del req
        return await self._run(self.store.models.list)

    # ----- chat
    async def chat_create(self, req: Request) -> Any:
        body = await _json(req)
        deployment = getattr(req.state, "deployment", None)
        if deployment is not None:
            body["model"] = deployment
        if _azure(req) and isinstance(body.get("model"), str):
            body["model"] = self._served_by(body["model"])
        return await self._run(lambda: create_chat_completion(self.store.models, body))

    def _served_by(self, name: str) -> str:
        """The model an Azure deployment name answers with (base models need none here)."""
        served = self.store.deployments.model_for(name)
        if served is not None:
            return served
        if looks_like_base(name):
            return name
        raise not_found("deployment", name)

    # ----- batches
    async def batches_create(self, req: Request) -> Any:
        body = await _json(req)
        return await self._run(lambda: self.store.batches.create(body))

    async def batches_list(self, req: Request) -> Any:
        q = req.query_params
        return await self._run(
            lambda: self.store.batches.list(after=q.get("after"), limit=q.get("limit"))
        )

    # ----- routes that only pass the path's object id (and a page's cursor) on
    def on_id(self, action: Callable[[str], Any]) -> Handler:
        """A handler calling ``action`` (a store part's method) with the path's object id."""

        async def handler(req: Request) -> Any:
            return await self._run(lambda: action(_id(req)))

        return handler

    def on_id_page(self, action: Callable[..., Any]) -> Handler:
        """Like :meth:`on_id`, passing the query's ``after`` and ``limit`` on too."""

        async def handler(req: Request) -> Any:
            q = req.query_params
            return await self._run(
                lambda: action(_id(req), after=q.get("after"), limit=q.get("limit"))
            )

        return handler


def _table(r: _Routes, store: Store) -> list[tuple[str, str, Handler]]:
    """Every route: method, path (after the front door's prefix) and handler."""
    parsing = [  # routes that read a body or a query of their own
        ("POST", "/files", r.files_create),
        ("GET", "/files", r.files_list),
        ("POST", "/uploads", r.uploads_create),
        ("POST", "/uploads/{id}/parts", r.uploads_part),
        ("POST", "/uploads/{id}/complete", r.uploads_complete),
        ("POST", "/fine_tuning/jobs", r.jobs_create),
        ("GET", "/fine_tuning/jobs", r.jobs_list),
        ("GET", "/models", r.models_list),
        ("POST", "/chat/completions", r.chat_create),
        ("POST", "/batches", r.batches_create),
        ("GET", "/batches", r.batches_list),
    ]
    by_id = [  # routes that pass the path's object id on, and nothing else
        ("GET", "/files/{id}", store.files.get),
        ("DELETE", "/files/{id}", store.files.delete),
        ("GET", "/files/{id}/content", store.files.content),
        ("POST", "/uploads/{id}/cancel", store.files.cancel_upload),
        ("GET", "/fine_tuning/jobs/{id}", store.jobs.get),
        ("POST", "/fine_tuning/jobs/{id}/cancel", store.jobs.cancel),
        ("POST", "/fine_tuning/jobs/{id}/pause", store.jobs.pause),
        ("POST", "/fine_tuning/jobs/{id}/resume", store.jobs.resume),
        ("GET", "/models/{id}", store.models.get),
        ("DELETE", "/models/{id}", store.models.delete),
        ("GET", "/batches/{id}", store.batches.get),
        ("POST", "/batches/{id}/cancel", store.batches.cancel),
    ]
    pages = [  # routes that pass the path's object id and a page's cursor on
        ("GET", "/fine_tuning/jobs/{id}/events", store.jobs.list_events),
        ("GET", "/fine_tuning/jobs/{id}/checkpoints", store.jobs.list_checkpoints),
    ]
    return [
        *parsing,
        *((method, path, r.on_id(action)) for method, path, action in by_id),
        *((method, path, r.on_id_page(action)) for method, path, action in pages),
    ]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            payload = await handler(request)
        except (ApiError, HTTPException):
            raise
        except Exception:
            # A bug must cost one request a 500 in the service's shape, never the server.
            logger.exception(
                "local backend: unexpected error on %s %s", request.method, request.url.path
            )
            raise ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
            ) from None
        if isinstance(payload, bytes):
            return Response(payload, media_type="application/octet-stream")
        return JSONResponse(payload)

    return endpoint


def error_response(exc: ApiError) -> JSONResponse:
    """The service's JSON error body for ``exc``, with its status and headers."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    del request
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 4xx (unknown route, wrong method, bad multipart) in the service's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    return error_response(ApiError(exc.status_code, message))


def build_app(
    store: Store, *, faults: Faults | None, api_key: str | None, max_body_bytes: int
) -> ASGIApp:
    """The whole backend as one ASGI app: front door, faults, then the routes."""
    routes = _Routes(store, max_body_bytes=max_body_bytes)
    starlette = Starlette(
        routes=[
            *(
                Route(path, _endpoint(handler), methods=[method])
                for method, path, handler in _table(routes, store)
            ),
            *arm_routes(store.deployments),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    inner: ASGIApp = starlette
    if faults is not None:
        inner = FaultsMiddleware(inner, faults)
    return FrontDoor(inner, api_key=api_key, max_body_bytes=max_body_bytes)
