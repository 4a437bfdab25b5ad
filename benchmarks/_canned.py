"""A canned-answer chat endpoint for benchmarks: Starlette under uvicorn on loopback.

Served exactly as the local backend is (h11, NODELAY on the listening socket), so what a
benchmark measures against it is the SDK, HTTP and framework floor.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.requests import Request


class CannedServer:
    """Answers ``POST /v1/chat/completions`` with ``payload`` after ``latency`` seconds."""

    def __init__(self, payload: bytes) -> None:
        self.latency = 0.0
        self.payload = payload
        app = Starlette(routes=[Route("/v1/chat/completions", self._answer, methods=["POST"])])
        self._sock = socket.socket()
        # Accepted connections inherit NODELAY: without it, Nagle and delayed ACKs add
        # ~40 ms to every keep-alive response.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        config = uvicorn.Config(app, http="h11", lifespan="off", log_config=None, access_log=False)
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._uvicorn.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of this server."""
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    async def _answer(self, request: Request) -> Response:
        await request.body()
        if self.latency:
            await asyncio.sleep(self.latency)
        return Response(self.payload, media_type="application/json")

    def shutdown(self) -> None:
        """Stop serving."""
        self._uvicorn.should_exit = True
        self._thread.join()
        self._sock.close()
