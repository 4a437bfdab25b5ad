"""In-process HTTP clients: an unmodified ``openai`` client talking to the ASGI app, no sockets.

The openai SDK takes an ``http_client=``: an ``httpx2.Client`` on openai 3.x, an
``httpx.Client`` on openai 2.x. Both HTTP libraries ship an ``ASGITransport`` for async
clients; for sync clients we drive the same ASGI transport on a private event-loop thread
(what Starlette's ``TestClient`` does with a portal). The HTTP library is the one the
installed openai uses, found from ``openai.DefaultHttpxClient``.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import weakref
from typing import TYPE_CHECKING, Any

import anyio
import openai

from ._faults import Dropped

if TYPE_CHECKING:
    from types import ModuleType

    from starlette.types import ASGIApp

__all__ = ["IN_PROCESS_ROOT", "in_process_async_http_client", "in_process_http_client"]

#: The origin in-process clients use (never resolved: nothing leaves the process).
IN_PROCESS_ROOT = "http://local.invalid"


def _http_module() -> ModuleType:
    """``httpx2`` or ``httpx``: whichever the installed openai builds its clients on."""
    for cls in openai.DefaultHttpxClient.__mro__:
        root = cls.__module__.partition(".")[0]
        if root in ("httpx", "httpx2"):
            return importlib.import_module(root)
    raise RuntimeError("cannot tell which HTTP library the installed openai uses")


def _read_timeout(request: Any) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read")
    return float(value) if value is not None else None


def _transports(app: ASGIApp) -> tuple[ModuleType, Any]:
    http = _http_module()
    # raise_app_exceptions: a dropped connection must reach the client as an error, not a 500.
    return http, http.ASGITransport(app=app, raise_app_exceptions=True)


async def _send(http: ModuleType, asgi: Any, request: Any) -> Any:
    """One request through the ASGI transport, body read, faults mapped to transport errors."""
    timeout = _read_timeout(request)
    try:
        with anyio.fail_after(timeout):
            response = await asgi.handle_async_request(request)
            content = await response.aread()
    except Dropped:
        raise http.RemoteProtocolError(
            "Server disconnected without sending a complete response.", request=request
        ) from None
    except TimeoutError:
        raise http.ReadTimeout("The in-process request timed out.", request=request) from None
    return http.Response(
        response.status_code, headers=response.headers, content=content, request=request
    )


def in_process_async_http_client(app: ASGIApp) -> Any:
    """An ``http_client`` for ``openai.AsyncOpenAI`` that sends requests straight to ``app``.

    Example::

        server = LocalServer(in_process=True).start()
        client = openai.AsyncOpenAI(
            api_key="sk-local",
            base_url=server.url,
            http_client=in_process_async_http_client(server.app),
        )
    """
    http, asgi = _transports(app)

    class _Transport(http.AsyncBaseTransport):  # type: ignore[misc, name-defined]
        async def handle_async_request(self, request: Any) -> Any:
            return await _send(http, asgi, request)

    return openai.DefaultAsyncHttpxClient(transport=_Transport(), base_url=IN_PROCESS_ROOT)


def in_process_http_client(app: ASGIApp) -> Any:
    """An ``http_client`` for ``openai.OpenAI`` (or ``AzureOpenAI``) that calls ``app`` in process.

    The app runs on an event loop in a private daemon thread, started here and stopped when
    the returned client is closed, or when it is garbage-collected unclosed.
    """
    http, asgi = _transports(app)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=_run_loop, args=(loop,), name="finetune-kit-local-in-process", daemon=True
    )
    thread.start()

    class _Transport(http.BaseTransport):  # type: ignore[misc, name-defined]
        def handle_request(self, request: Any) -> Any:
            request.read()  # a sync body, read here; the loop then sees bytes
            future = asyncio.run_coroutine_threadsafe(_send(http, asgi, request), loop)
            return future.result()

        def close(self) -> None:
            if stopped():
                thread.join()

    transport = _Transport()
    # Neither the thread nor the finalizer refers to the transport, so an unclosed client
    # that goes out of use still stops its loop (its thread would otherwise run forever).
    stopped = weakref.finalize(transport, _stop_loop, loop)
    return openai.DefaultHttpxClient(transport=transport, base_url=IN_PROCESS_ROOT)


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


def _stop_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Ask ``loop`` to stop (from any thread); False if it had already closed."""
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:  # closed
        return False
    return True
