"""An ARM-shaped deployments service on loopback for the deployment tests (not a test module).

``finetune_kit.local._arm``'s routes, served by uvicorn in a thread on a manual clock, behind
a middleware that can fail requests (before or after the service acted), answer a request
with a canned refusal (403 AuthorizationFailed, InsufficientQuota, ...) and stamp ARM's
``systemData`` into replies (the local routes leave it out).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import uvicorn
from azure.core.credentials import AccessToken
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from finetune_kit import RetryPolicy
from finetune_kit.local import ManualClock
from finetune_kit.local._arm import ArmDeployments, arm_routes
from finetune_kit.models._deployments import AzureResource

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

MODEL = "gpt-4.1-mini-2025-04-14.ft-0123456789abcdef"


class StaticToken:
    """A credential that hands out one fake bearer token (the service only checks presence)."""

    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)


class AsyncStaticToken:
    async def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


class Faults:
    """ASGI middleware: planned failures, canned refusals and ``systemData`` stamps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.plan: list[tuple[str, str]] = []  # (method, "before" | "after")
        self.refusals: list[tuple[str, int, str]] = []  # (method, status, ARM error code)
        self.system_data: dict[str, str] | None = None
        self.seen: list[str] = []

    def reset(self) -> None:
        self.plan.clear()
        self.refusals.clear()
        self.seen.clear()
        self.system_data = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        self.seen.append(method)
        for i, (want, status, code) in enumerate(self.refusals):
            if want == method:
                del self.refusals[i]
                body = {"error": {"code": code, "message": f"refused: {code}"}}
                await JSONResponse(body, status_code=status)(scope, receive, send)
                return
        for i, (want, when) in enumerate(self.plan):
            if want == method:
                del self.plan[i]
                if when == "before":
                    await Response(status_code=503)(scope, receive, send)
                    return

                async def swallow(_message: Message) -> None:
                    return None

                await self.app(scope, receive, swallow)  # the service acts...
                await JSONResponse(  # ...and the reply is lost in a gateway error
                    {"error": {"code": "InternalServerError", "message": "lost"}},
                    status_code=502,
                )(scope, receive, send)
                return
        if self.system_data is None:
            await self.app(scope, receive, send)
            return
        await self._stamped(scope, receive, send, self.system_data)

    async def _stamped(
        self, scope: Scope, receive: Receive, send: Send, system_data: dict[str, str]
    ) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        body = b"".join(chunks)
        if start.get("status") == 200 and body:
            doc = json.loads(body)
            doc["systemData"] = system_data
            body = json.dumps(doc).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Service:
    def __init__(self) -> None:
        self.clock = ManualClock(1_800_000_000.0)
        self.arm = ArmDeployments(
            clock=self.clock, model_exists=lambda m: m.startswith("gpt-"), provisioning_seconds=30
        )
        self.faults = Faults(Starlette(routes=arm_routes(self.arm)))
        self.port = 0

    def resource(self) -> AzureResource:
        return AzureResource(
            "sub-1", "rg-1", "acct-1", management_url=f"http://127.0.0.1:{self.port}"
        )

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            sleep=self.clock.sleep, async_sleep=self.clock.asleep, clock=self.clock, jitter=0
        )

    def count(self) -> int:
        return len(self.arm.list(("sub-1", "rg-1", "acct-1")))

    def reset(self) -> Service:
        for key in list(self.arm._items):
            self.arm._items.pop(key)
        self.faults.reset()
        return self


@contextmanager
def serve() -> Iterator[Service]:
    """The service on a free loopback port for the duration of the block."""
    service = Service()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    service.port = sock.getsockname()[1]
    config = uvicorn.Config(service.faults, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:  # the startup handshake: a few ms
        # A plain sleep, not thread.join(timeout): under libfaketime a timed wait on a lock
        # takes its deadline from the faked clock and can sleep for months.
        time.sleep(0.005)
    try:
        yield service
    finally:
        server.should_exit = True
        thread.join(5)
