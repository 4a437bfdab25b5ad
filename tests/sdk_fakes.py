"""Building SDK objects by hand for the job/retry/upload tests (not a test module itself).

openai 3.x builds its errors on httpx2 objects, openai 2.x on httpx ones; these helpers pick
the module the installed SDK uses so every test is written once.
"""

from __future__ import annotations

import importlib
from typing import Any

import openai

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
