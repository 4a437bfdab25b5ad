"""Errors the local backend answers with, in the service's JSON shape.

Route handlers raise :class:`ApiError`; the HTTP layer turns it into
``{"error": {"message", "type", "param", "code"}}`` with the status code. Anything else a
handler raises becomes a 500 in the same shape (logged, never echoed as a stack trace).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "bad_request", "integer", "not_found"]


class ApiError(Exception):
    """An error response: HTTP status plus the service's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body the service sends for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)


def integer(value: Any, message: str, *, param: str) -> int:
    """``value`` (a query string, a JSON key) as an int, or a 400 saying ``message``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(message, param=param) from None


def not_found(kind: str, object_id: str, *, param: str | None = None) -> ApiError:
    """A 404 for an unknown object id, worded like the service."""
    return ApiError(404, f"No such {kind} object: {object_id}", param=param)
