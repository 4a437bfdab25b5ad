"""``LocalServer``: the local backend served by uvicorn in a background thread, or in process.

The app is :func:`~finetune_kit.local._app.build_app`'s ASGI app. With ``in_process=True``
nothing listens: the ready-made clients send requests straight to the app (see
:mod:`._transport`), which is what most tests want.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, TypedDict, cast

import openai
import uvicorn

from ._app import build_app
from ._faults import Dropped
from ._state import State
from ._store import Store, Timing
from ._trainer import LinearTrainer
from ._transport import IN_PROCESS_ROOT, in_process_async_http_client, in_process_http_client

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from starlette.types import ASGIApp
    from typing_extensions import Unpack

    from ._faults import Faults
    from ._trainer_types import AnswerModel, Trainer

__all__ = ["ClientOptions", "LocalServer"]


class ClientOptions(TypedDict, total=False):
    """The keywords :class:`LocalServer`'s client factories take, declared once.

    Attributes:
        api_key: the key to send (default: the server's own, or a placeholder when it has
            none).
        max_retries: the SDK's own retries (default 2).
        timeout: seconds per request (default 60).
    """

    api_key: str | None
    max_retries: int
    timeout: float


logger = logging.getLogger("finetune_kit")

#: The key clients send when the server requires none (the SDK insists on having one).
_PLACEHOLDER_KEY = "sk-local-no-key-needed"
#: Azure API version the ready-made Azure client sends (any value is accepted).
DEFAULT_AZURE_API_VERSION = "2024-10-21"


class _QuietDrops(logging.Filter):
    """Keep uvicorn from logging an injected dropped connection as an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Dropped))


_UVICORN_LOGGER = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _QuietDrops) for f in _UVICORN_LOGGER.filters):
    _UVICORN_LOGGER.addFilter(_QuietDrops())


class _Server(uvicorn.Server):
    """uvicorn's server, stopping as soon as :meth:`stop_soon` asks.

    uvicorn itself notices ``should_exit`` on its next 0.1 s tick and then always waits
    another 0.1 s for connections to close: about 0.15 s per stop, paid in full by a suite
    that starts dozens of servers. Here a stop wakes the loop at once, and shutdown waits for
    open connections and request tasks only while there are any, as long as
    ``timeout_graceful_shutdown`` allows (then, like uvicorn, it cancels the tasks).
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def stop_soon(self) -> None:
        """Ask the server to shut down (from any thread)."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        # uvicorn's loop (a tick every 0.1 s: date header, request limits), woken by a stop.
        self._wake = wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864_000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # closes idle connections, ends busy ones after the reply
        try:
            await asyncio.wait_for(self._drained(), self.config.timeout_graceful_shutdown)
        except asyncio.TimeoutError:
            for task in self.server_state.tasks:
                task.cancel()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        state = self.server_state
        # uvicorn's sets signal nothing when they empty; a closed transport leaves its set a
        # loop turn or two after the close.
        while state.connections or state.tasks:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        for server in self.servers:
            await server.wait_closed()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket (bound here so the port is known before uvicorn starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host == "localhost":
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit NODELAY: without it, Nagle's algorithm and the
        # client's delayed ACK stall every kept-alive response by ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1" if host == "localhost" else host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalServer:
    """An OpenAI-compatible fine-tuning service on this machine, for tests and demos.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with LocalServer() as server:
            client = server.client()
            client.files.create(file=open("train.jsonl", "rb"), purpose="fine-tune")

    Args:
        host: Address to bind; anything but loopback requires ``api_key``.
        port: Port to bind; 0 picks a free one (see :attr:`port` after start).
        data_dir: Keep state in SQLite + files here (survives restarts); None keeps it in
            memory.
        faults: Errors, drops and delays to inject (see :class:`Faults`).
        speed: How much faster than the default pace jobs and batches move (a small job takes
            a few seconds at 1.0).
        api_key: When set, every request must carry it (``Authorization: Bearer`` or Azure's
            ``api-key`` header); others get 401.
        clock: Time source in seconds (default ``time.time``); tests pass a fake one to move
            jobs forward without waiting.
        max_body_bytes: Larger request bodies get 413.
        in_process: Listen on no socket: :meth:`start` only builds :attr:`app`, and the
            ready-made clients send their requests straight to it (no network, no port).
        trainer: What trains jobs and loads the models they saved (see :class:`Trainer`);
            default :class:`LinearTrainer`. A ``data_dir`` holds models in the JSON form of
            the trainer that made them, so reopen it with the same trainer.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        faults: Faults | None = None,
        speed: float = 1.0,
        api_key: str | None = None,
        clock: Callable[[], float] | None = None,
        max_body_bytes: int = 512 * 1024 * 1024,
        in_process: bool = False,
        trainer: Trainer[AnswerModel] | None = None,
    ) -> None:
        if not _is_loopback(host) and not api_key:
            raise ValueError(
                f"Refusing to bind to {host!r} without api_key: anyone on the network could "
                "use the server. Pass api_key=... (or bind to 127.0.0.1)."
            )
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.host = host
        self._requested_port = port
        self.data_dir = data_dir
        self.faults = faults
        self.speed = speed
        self._api_key = api_key
        self._clock = clock or time.time
        self._max_body = max_body_bytes
        self.in_process = in_process
        self.trainer: Trainer[AnswerModel] = LinearTrainer() if trainer is None else trainer
        self._app: ASGIApp | None = None
        self._uvicorn: _Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._running = False
        # Sync clients handed out by client()/azure_client(), closed on stop() so their pooled
        # connections (or in-process event loops) do not outlive the server.
        self._clients: weakref.WeakSet[openai.OpenAI] = weakref.WeakSet()

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._running else "stopped"
        return f"LocalServer({state}, data_dir={self.data_dir!r}, speed={self.speed})"

    @property
    def app(self) -> ASGIApp:
        """The backend as an ASGI app (built on first use; :meth:`stop` releases its state).

        Mount it anywhere ASGI apps go, or give it to
        :func:`~finetune_kit.local.in_process_http_client` to talk to it without a socket.
        """
        if self._app is None:
            state = State(
                data_dir=self.data_dir,
                clock=self._clock,
                timing=Timing().scaled(self.speed),
                trainer=self.trainer,
            )
            store = Store(state)
            if self.faults is not None:
                self.faults.reset()
            self._store = store
            self._app = build_app(
                store, faults=self.faults, api_key=self._api_key, max_body_bytes=self._max_body
            )
        return self._app

    @property
    def clock(self) -> Callable[[], float]:
        """The server's time source (a :class:`ManualClock` in tests)."""
        return self._clock

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        if self._socket is None:
            return self._requested_port
        return int(self._socket.getsockname()[1])

    @property
    def root_url(self) -> str:
        """``http://host:port`` without a path (Azure clients take this as the endpoint)."""
        if self.in_process:
            return IN_PROCESS_ROOT
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL, ending in ``/v1``."""
        return f"{self.root_url}/v1"

    @property
    def management_url(self) -> str:
        """Azure Resource Manager's URL for this server: its root (``/subscriptions/...``).

        Give it to ``AzureResource(..., management_url=server.management_url)`` with any
        subscription, resource group and account names, and a credential handing out any
        bearer token (:class:`StaticToken`; the server's ``api_key`` when it has one). ARM
        clients use their own HTTP stack, so this needs a listening server, not
        ``in_process=True``.
        """
        return self.root_url

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._running

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            http="h11",  # the pure-Python parser: the same behaviour on every install
            loop="asyncio",
            lifespan="off",
            log_config=None,  # a library leaves logging configuration to its user
            access_log=False,
            timeout_keep_alive=120,
            timeout_graceful_shutdown=2,
            server_header=False,
        )

    def start(self) -> LocalServer:
        """Serve in a daemon thread (or, in process, just build the app); returns ``self``."""
        if self._running:
            return self
        app = self.app
        if self.in_process:
            self._running = True
            return self
        del app
        try:
            sock = _bind(self.host, self._requested_port)
        except BaseException:
            self._release()
            raise
        server = _Server(self._config())
        self._socket = sock
        self._uvicorn = server
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"finetune-kit-local:{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._running = True
        logger.info("local backend listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (what ``finetune-kit serve`` runs)."""
        if self.in_process:
            raise RuntimeError("an in-process LocalServer has nothing to serve")
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, close open connections and clients, and release the state."""
        if not self._running and self._app is None:
            return
        self._running = False
        server, self._uvicorn = self._uvicorn, None
        if server is not None:
            server.stop_soon()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None
        for client in list(self._clients):
            client.close()
        self._clients.clear()
        self._release()
        logger.info("local backend stopped")

    def _release(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self._app = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _settings(self, where: str, options: Mapping[str, object]) -> dict[str, Any]:
        """A client factory's ``options`` (see :class:`ClientOptions`) with their defaults."""
        unknown = sorted(set(options) - set(ClientOptions.__annotations__))
        if unknown:
            raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}")
        chosen = cast("ClientOptions", options)
        return {
            # Neither given nor the server's: a placeholder (the SDK builds no client without).
            "api_key": chosen.get("api_key") or self._api_key or _PLACEHOLDER_KEY,
            "max_retries": chosen.get("max_retries", 2),
            "timeout": chosen.get("timeout", 60.0),
        }

    def client(self, **options: Unpack[ClientOptions]) -> openai.OpenAI:
        """An ``openai.OpenAI`` aimed at this server (with its key, if it has one).

        Clients made here are closed when the server stops.

        Args:
            **options: ``api_key``, ``max_retries``, ``timeout`` (see :class:`ClientOptions`).
        """
        settings = self._settings("LocalServer.client()", options)
        client = openai.OpenAI(base_url=self.url, http_client=self._http_client(), **settings)
        self._clients.add(client)
        return client

    def _http_client(self) -> Any:
        return in_process_http_client(self.app) if self.in_process else None

    def _async_http_client(self) -> Any:
        return in_process_async_http_client(self.app) if self.in_process else None

    def async_client(self, **options: Unpack[ClientOptions]) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` aimed at this server (close it with ``await .close()``);
        ``options`` as :meth:`client`."""
        settings = self._settings("LocalServer.async_client()", options)
        return openai.AsyncOpenAI(
            base_url=self.url, http_client=self._async_http_client(), **settings
        )

    def azure_client(
        self,
        *,
        api_version: str = DEFAULT_AZURE_API_VERSION,
        **options: Unpack[ClientOptions],
    ) -> openai.AzureOpenAI:
        """An ``openai.AzureOpenAI`` with this server as its endpoint (deployment = model);
        ``options`` as :meth:`client`.

        Clients made here are closed when the server stops.
        """
        settings = self._settings("LocalServer.azure_client()", options)
        client = openai.AzureOpenAI(
            azure_endpoint=self.root_url,
            api_version=api_version,
            http_client=self._http_client(),
            **settings,
        )
        self._clients.add(client)
        return client

    def async_azure_client(
        self,
        *,
        api_version: str = DEFAULT_AZURE_API_VERSION,
        **options: Unpack[ClientOptions],
    ) -> openai.AsyncAzureOpenAI:
        """An ``openai.AsyncAzureOpenAI`` with this server as its endpoint (close it with
        ``await .close()``); ``options`` as :meth:`client`."""
        settings = self._settings("LocalServer.async_azure_client()", options)
        return openai.AsyncAzureOpenAI(
            azure_endpoint=self.root_url,
            api_version=api_version,
            http_client=self._async_http_client(),
            **settings,
        )
