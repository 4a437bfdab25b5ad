"""Errors the local backend answers with, in the service's JSON shape.

Route handlers raise :class:`ApiError`; the HTTP layer turns it into
``{"error": {"message", "type", "param", "code"}}`` with the status code. Anything else a
handler raises becomes a 500 in the same shape (logged, never echoed as a stack trace).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ApiError", "bad_request", "integer", "lookup", "not_found"]

_R = TypeVar("_R")

#: How the service words a 404 for each kind of object: the message (``{id}`` is the
#: object's id or name), the parameter it names and its error code.
_NOT_FOUND: Final[dict[str, tuple[str, str | None, str | None]]] = {
    "file": ("No such File object: {id}", "file_id", None),
    "upload": ("No such Upload object: {id}", "upload_id", None),
    "batch": ("No such Batch object: {id}", "batch_id", None),
    "job": ("Could not find fine-tuning job {id}.", "fine_tuning_job_id", "fine_tune_not_found"),
    "model": (
        "The model `{id}` does not exist or you do not have access to it.",
        "model",
        "model_not_found",
    ),
    # Azure's, for a deployment name that serves nothing (yet).
    "deployment": (
        "The API deployment {id} for this resource does not exist. If you created the "
        "deployment within the last 5 minutes, please wait a moment and try again.",
        None,
        "DeploymentNotFound",
    ),
}


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
    """The service's 404 for an unknown object of ``kind`` (a key of ``_NOT_FOUND``).

    Args:
        kind: ``"file"``, ``"upload"``, ``"batch"``, ``"job"``, ``"model"`` or ``"deployment"``.
        object_id: The id (or name) asked for.
        param: The request parameter that named it, when not the kind's usual one.
    """
    message, usual_param, code = _NOT_FOUND[kind]
    return ApiError(404, message.format(id=object_id), param=param or usual_param, code=code)


def lookup(records: Mapping[str, _R], kind: str, object_id: str, *, param: str | None = None) -> _R:
    """The record ``object_id`` of ``records``, or the service's 404 (see :func:`not_found`)."""
    record = records.get(object_id)
    if record is None:
        raise not_found(kind, object_id, param=param)
    return record
