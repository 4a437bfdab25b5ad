"""``LocalServer``: the local backend in a background thread, with ready-made clients."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

import openai

from ._app import App, LocalHTTPServer
from ._store import Store, Timing

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from types import TracebackType

    from ._faults import Faults

__all__ = ["LocalServer"]

logger = logging.getLogger("finetune_kit")

#: The key clients send when the server requires none (the SDK insists on having one).
_PLACEHOLDER_KEY = "sk-local-no-key-needed"
#: Azure API version the ready-made Azure client sends (any value is accepted).
DEFAULT_AZURE_API_VERSION = "2024-10-21"


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
        self._httpd: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        # Sync clients handed out by client()/azure_client(), closed on stop() so their pooled
        # connections do not outlive the server (and leak ResourceWarnings in tests).
        self._clients: weakref.WeakSet[openai.OpenAI] = weakref.WeakSet()

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._httpd is not None else "stopped"
        return f"LocalServer({state}, data_dir={self.data_dir!r}, speed={self.speed})"

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://host:port`` without a path (Azure clients take this as the endpoint)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL, ending in ``/v1``."""
        return f"{self.root_url}/v1"

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._httpd is not None

    def start(self) -> LocalServer:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        store = Store(data_dir=self.data_dir, clock=self._clock, speed=self.speed, timing=Timing())
        if self.faults is not None:
            self.faults.reset()
        app = App(store, faults=self.faults, api_key=self._api_key)
        try:
            httpd = LocalHTTPServer(
                (self.host, self._requested_port), app, max_body_bytes=self._max_body
            )
        except BaseException:
            store.close()
            raise
        self._store = store
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"finetune-kit-local:{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("local backend listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (what ``finetune-kit serve`` runs)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, close open connections and release the state."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None
        for client in list(self._clients):
            client.close()
        self._clients.clear()
        logger.info("local backend stopped")

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _key(self, api_key: str | None) -> str:
        return api_key or self._api_key or _PLACEHOLDER_KEY

    def client(
        self,
        *,
        api_key: str | None = None,
        max_retries: int = 2,
        timeout: float = 60.0,
    ) -> openai.OpenAI:
        """An ``openai.OpenAI`` aimed at this server (with its key, if it has one).

        Clients made here are closed when the server stops.
        """
        client = openai.OpenAI(
            api_key=self._key(api_key), base_url=self.url, max_retries=max_retries, timeout=timeout
        )
        self._clients.add(client)
        return client

    def async_client(
        self,
        *,
        api_key: str | None = None,
        max_retries: int = 2,
        timeout: float = 60.0,
    ) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` aimed at this server."""
        return openai.AsyncOpenAI(
            api_key=self._key(api_key), base_url=self.url, max_retries=max_retries, timeout=timeout
        )

    def azure_client(
        self,
        *,
        api_key: str | None = None,
        api_version: str = DEFAULT_AZURE_API_VERSION,
        max_retries: int = 2,
        timeout: float = 60.0,
    ) -> openai.AzureOpenAI:
        """An ``openai.AzureOpenAI`` with this server as its endpoint (deployment = model).

        Clients made here are closed when the server stops.
        """
        client = openai.AzureOpenAI(
            azure_endpoint=self.root_url,
            api_key=self._key(api_key),
            api_version=api_version,
            max_retries=max_retries,
            timeout=timeout,
        )
        self._clients.add(client)
        return client
