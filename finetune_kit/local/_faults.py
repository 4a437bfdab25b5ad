"""Faults on demand: errors, dropped connections and delays, deterministic by seed.

A :class:`Faults` holds rules; each :class:`FaultRule` matches requests by method and a path
pattern (shell-style, matched against the API path *without* its ``/v1`` or Azure ``/openai``
prefix, e.g. ``/fine_tuning/jobs``, ``/files/*/content``, ``*``) and fires on the first N
matching requests (``first``), on a fraction of them (``rate``, drawn from a generator seeded
by ``Faults.seed`` and the rule's position), or on every one. The first rule that fires wins.

Kinds (the string form's names in brackets):

- ``rate_limit`` (``429``): 429 ``rate_limit_exceeded`` with ``retry-after``/``retry-after-ms``.
- ``insufficient_quota`` (``quota``): 429 ``insufficient_quota``; waiting does not help.
- ``server_error`` (``500``) and ``unavailable`` (``503``).
- ``drop`` (``drop``): close the connection before a response is complete; nothing is
  performed. Over a socket the client sees the connection die; in process (see
  :func:`~finetune_kit.local.in_process_http_client`) it sees the same transport error.
- ``slow`` (``slow``): wait ``delay`` seconds, then answer normally.
- ``drop_after`` (``drop-after``) and ``error_after`` (``500-after``): perform the request
  (the file or job *is* created), then drop the connection or answer 500 — what a client sees
  when a response is lost, the case idempotent retries exist for.

String form (``finetune-kit serve --faults``): rules separated by ``;``, each
``KIND@[METHOD:]PATTERN[,first=N][,rate=P][,retry_after=S][,delay=S]``, plus an optional
``seed=N`` item. Example::

    429@POST:/fine_tuning/jobs,first=2;drop-after@POST:/files,first=1;slow@*,rate=0.1,delay=2
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import anyio
from starlette.responses import JSONResponse

from ._errors import ApiError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Dropped", "FaultKind", "FaultRule", "Faults", "FaultsMiddleware"]

FaultKind = Literal[
    "rate_limit",
    "insufficient_quota",
    "server_error",
    "unavailable",
    "drop",
    "slow",
    "drop_after",
    "error_after",
]

_SHORT: Final[dict[str, FaultKind]] = {
    "429": "rate_limit",
    "rate_limit": "rate_limit",
    "quota": "insufficient_quota",
    "insufficient_quota": "insufficient_quota",
    "500": "server_error",
    "server_error": "server_error",
    "503": "unavailable",
    "unavailable": "unavailable",
    "drop": "drop",
    "slow": "slow",
    "drop-after": "drop_after",
    "drop_after": "drop_after",
    "500-after": "error_after",
    "error_after": "error_after",
}


@dataclass(frozen=True)
class FaultRule:
    """When and how to misbehave for matching requests.

    Attributes:
        kind: What happens (see the module docstring).
        path: Shell-style pattern for the API path without ``/v1`` (``*`` matches all).
        method: HTTP method to match, or None for any.
        first: Fire on the first ``first`` matching requests only.
        rate: Fire on this fraction of matching requests (seeded draws).
        retry_after: Seconds announced by ``rate_limit`` faults.
        delay: Seconds a ``slow`` fault waits before answering.
    """

    kind: FaultKind
    path: str = "*"
    method: str | None = None
    first: int | None = None
    rate: float | None = None
    retry_after: float = 1.0
    delay: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _SHORT.values():
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {self.rate}")
        if self.first is not None and self.first < 0:
            raise ValueError(f"first must be >= 0, got {self.first}")

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with ``method`` to ``path`` is one this rule considers."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass
class Faults:
    """A set of fault rules and the seed their random draws derive from."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    _seen: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _rngs: list[random.Random] = field(default_factory=list, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start counting and drawing afresh (as a new server would)."""
        self._seen = [0] * len(self.rules)
        self._rngs = [random.Random(f"{self.seed}:{i}") for i in range(len(self.rules))]

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (counts the request for every rule)."""
        fired: FaultRule | None = None
        with self._lock:
            for i, rule in enumerate(self.rules):
                if not rule.matches(method, path):
                    continue
                self._seen[i] += 1
                if rule.first is not None:
                    hit = self._seen[i] <= rule.first
                elif rule.rate is not None:
                    hit = self._rngs[i].random() < rule.rate
                else:
                    hit = True
                if hit and fired is None:
                    fired = rule
        return fired

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Parse the compact string form (see the module docstring).

        Raises:
            ValueError: On any syntax error, naming the offending item.
        """
        rules: list[FaultRule] = []
        seed = 0
        for raw in spec.split(";"):
            item = raw.strip()
            if not item:
                continue
            if item.startswith("seed="):
                seed = _int(item[5:], item)
                continue
            head, _, opts = item.partition(",")
            kind_name, at, target = head.partition("@")
            kind = _SHORT.get(kind_name.strip().lower())
            if kind is None or not at:
                raise ValueError(f"bad fault rule {item!r}: expected KIND@[METHOD:]PATTERN")
            method: str | None = None
            target = target.strip()
            if ":" in target and not target.startswith("/") and target != "*":
                method, _, target = target.partition(":")
                method = method.upper()
            first: int | None = None
            rate: float | None = None
            retry_after = 1.0
            delay = 1.0
            for opt in filter(None, (o.strip() for o in opts.split(","))):
                key, eq, value = opt.partition("=")
                if not eq:
                    raise ValueError(f"bad option {opt!r} in fault rule {item!r}")
                if key == "first":
                    first = _int(value, item)
                elif key == "rate":
                    rate = _float(value, item)
                elif key in ("retry_after", "retry-after"):
                    retry_after = _float(value, item)
                elif key == "delay":
                    delay = _float(value, item)
                else:
                    raise ValueError(f"unknown option {key!r} in fault rule {item!r}")
            rules.append(
                FaultRule(
                    kind=kind,
                    path=target or "*",
                    method=method,
                    first=first,
                    rate=rate,
                    retry_after=retry_after,
                    delay=delay,
                )
            )
        return cls(rules=rules, seed=seed)


def _int(text: str, item: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"bad number {text!r} in fault rule {item!r}") from None


def _float(text: str, item: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"bad number {text!r} in fault rule {item!r}") from None


class Dropped(ConnectionResetError):
    """Raised by :class:`FaultsMiddleware` to drop a connection (an injected fault).

    uvicorn closes the connection of a response that was started but never finished; the
    in-process transports turn this into the HTTP client's own transport error.
    """


_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def _fault_error(rule: FaultRule) -> ApiError:
    """The error response a fault of ``rule.kind`` answers with (not for drops and delays)."""
    kind = rule.kind
    if kind == "rate_limit":
        wait = rule.retry_after
        return ApiError(
            429,
            f"Rate limit reached for requests on the local backend. Please try again in {wait:g}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after": f"{wait:g}", "retry-after-ms": str(int(wait * 1000))},
        )
    if kind == "insufficient_quota":
        return ApiError(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    if kind == "unavailable":
        return ApiError(
            503,
            "The server is overloaded or not ready yet.",
            type="server_error",
            code="service_unavailable",
        )
    return ApiError(500, _SERVER_ERROR, type="server_error")


class FaultsMiddleware:
    """Applies :class:`Faults` to requests; sits behind the front door (API paths).

    ``drop_after`` and ``error_after`` let the request run to completion (so what it
    creates exists) and throw its response away.
    """

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = None
        if scope["type"] == "http":
            rule = self.faults.pick(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.kind == "slow":
            await anyio.sleep(rule.delay)
            await self.app(scope, receive, send)
            return
        if rule.kind in ("drop_after", "error_after"):

            async def swallow(message: Message) -> None:
                del message  # the response is lost on its way back

            await self.app(scope, receive, swallow)
        if rule.kind in ("drop", "drop_after"):
            await _drop(send)
        error = _fault_error(rule)
        response = JSONResponse(error.body(), status_code=error.status, headers=error.headers)
        await response(scope, receive, send)


async def _drop(send: Send) -> None:
    # A started, never finished response: uvicorn closes the connection (a response that
    # never started would get a 500 instead).
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise Dropped("connection dropped by an injected fault")
