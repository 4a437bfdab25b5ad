"""The front door: what every request goes through before it reaches a route.

An ASGI middleware that, in order, stamps each response with ``x-request-id`` and
``openai-processing-ms``, maps the API's path prefixes to the routes' paths (``/v1``
for OpenAI, ``/openai`` and ``/openai/v1`` for Azure, whose ``/deployments/{name}/...``
names the model), checks the API key, and refuses bodies over the size limit with 413.

Azure's control plane (``/subscriptions/...``, see :mod:`._arm`) is answered by the same
server at its root, unchanged: ARM paths keep their full path. Routes learn which API a
request came through from ``request.state.surface`` (``"openai"``, ``"azure"`` or ``"arm"``).
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from ._errors import ApiError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FrontDoor", "Surface", "too_large"]

_PREFIXES: Final = ("/openai/v1", "/openai", "/v1")
_AZURE_PREFIXES: Final = ("/openai/v1", "/openai")
_ARM_PREFIX: Final = "/subscriptions/"
_DEPLOYMENT: Final = re.compile(r"^/deployments/([^/]+)(/.*)$")

Surface = Literal["openai", "azure", "arm"]


def too_large(limit: int) -> ApiError:
    """The 413 for a body over ``limit`` bytes."""
    return ApiError(
        413,
        f"The request body is larger than the local backend accepts ({limit} bytes).",
        code="request_too_large",
    )


def _api_path(path: str) -> tuple[str, str | None, Surface] | None:
    """``(route path, Azure deployment or None, surface)``, or None for a foreign path."""
    if path.startswith(_ARM_PREFIX):
        return path, None, "arm"
    for prefix in _PREFIXES:
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) :]
            surface: Surface = "azure" if prefix in _AZURE_PREFIXES else "openai"
            found = _DEPLOYMENT.match(rest)
            if found:
                return found.group(2), unquote(found.group(1)), surface
            return rest, None, surface
    return None


class FrontDoor:
    """Request ids, path prefixes, authentication and the body-size limit (see module doc)."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self._api_key = api_key
        self.max_body = max_body_bytes

    def _authorised(self, headers: Headers) -> bool:
        if self._api_key is None:
            return True
        given = headers.get("api-key") or ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), self._api_key.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(16)
        started = time.monotonic()

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = str(int((time.monotonic() - started) * 1000))
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    (b"openai-processing-ms", elapsed.encode()),
                ]
            await send(message)

        headers = Headers(scope=scope)
        found = _api_path(scope["path"])
        error: ApiError | None = None
        if found is None:
            error = ApiError(404, f"Invalid URL ({scope['method']} {scope['path']})")
        elif not self._authorised(headers):
            error = ApiError(
                401,
                "Incorrect API key provided. You can find your API key in the local "
                "backend's configuration.",
                code="invalid_api_key",
            )
        else:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                error = too_large(self.max_body)
        if error is not None:
            response = JSONResponse(error.body(), status_code=error.status, headers=error.headers)
            await response(scope, receive, stamped)
            return
        assert found is not None
        path, deployment, surface = found
        state = dict(scope.get("state") or {})
        state["deployment"] = deployment
        state["surface"] = surface
        inner_scope = {**scope, "path": path, "raw_path": path.encode(), "state": state}
        await self.app(inner_scope, self._limited(receive), stamped)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that raises 413 once a (chunked) body passes the limit."""
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise too_large(self.max_body)
            return message

        return limited
