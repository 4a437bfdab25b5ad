"""What each endpoint accepts, remembered per client; and the client a call sends through.

Capabilities belong to the caller's client object (or, when no client is given, to the
default client), never to the process: :func:`capabilities` returns the
:class:`Capabilities` of a client, kept in a weak-keyed map so it goes away with the client.
Inside one client they are kept per endpoint (``base_url``) and model.

What changes them:

- the service's explicit refusal: a 400 naming a parameter classify added
  (:func:`refused_parameter`) is remembered at once;
- repeated evidence: a model that answers off the labels under ``logit_bias`` (which a
  +100 bias makes impossible on an endpoint that honours it) is moved off ``logit_bias``
  only after :data:`OFF_LABEL_STRIKES` such answers in a row; one answer that follows the
  bias clears the count. A single odd reply only changes the rung of that one call.

The client a call sends through is the caller's with the SDK's retries off
(``with_options(max_retries=0)``, about 60-70 µs to make). The copy is reused only while every
setting of the caller's client is unchanged (the same objects; headers compared by value): a
key rotated with ``client.api_key = ...``, a changed ``base_url`` or timeout make a new copy
at the next call, so no call acts on stale settings.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import openai

from .._core.client import resolve_async_client, resolve_client

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "OFF_LABEL_STRIKES",
    "Capabilities",
    "CapabilityKey",
    "async_client",
    "capabilities",
    "capability_key",
    "client_type_error",
    "forget_capabilities",
    "is_settled",
    "known_refusals",
    "mark_settled",
    "note_followed_bias",
    "note_off_label",
    "refused_parameter",
    "remember_refusal",
    "sync_client",
]

#: Off-label answers in a row under ``logit_bias`` before the model is moved off it.
OFF_LABEL_STRIKES: Final = 3

# Parameters classify adds to a request and can do without (or swap). A 400 naming one of them
# is a capability answer, not an error in the caller's input.
OWN_PARAMS: Final = (
    "max_completion_tokens",
    "response_format",
    "top_logprobs",
    "temperature",
    "logit_bias",
    "max_tokens",
    "logprobs",
)
_REFUSAL_CODES: Final = frozenset({"unsupported_parameter", "unsupported_value"})


class Capabilities:
    """What one client's endpoints accepted and refused, per (endpoint, model).

    Get it with :func:`finetune_kit.capabilities`; thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refused: dict[tuple[str, str], frozenset[str]] = {}
        self._settled: set[tuple[str, str]] = set()
        self._strikes: dict[tuple[str, str], int] = {}

    def refused(self, model: str, *, endpoint: str | None = None) -> frozenset[str]:
        """The parameters refused for ``model`` (at ``endpoint``, or at any endpoint)."""
        with self._lock:
            entries = list(self._refused.items())
        return frozenset().union(
            *(
                params
                for (where, name), params in entries
                if name == model and endpoint in (None, where)
            )
        )

    def as_dict(self) -> dict[tuple[str, str], frozenset[str]]:
        """Every remembered refusal: (endpoint, model) -> the parameters refused."""
        with self._lock:
            return dict(self._refused)

    def reset(self, model: str | None = None) -> None:
        """Forget what was learnt (about ``model`` only, when given): the next call probes."""
        with self._lock:
            for store in (self._refused, self._strikes):
                for key in [k for k in store if model in (None, k[1])]:
                    del store[key]
            self._settled = {k for k in self._settled if model not in (None, k[1])}

    def __repr__(self) -> str:
        return f"Capabilities({self.as_dict()!r})"


@dataclass(frozen=True, eq=False)
class CapabilityKey:
    """Where one call's capabilities live: the client's memory, the endpoint, the model."""

    memory: Capabilities
    endpoint: str
    model: str

    @property
    def pair(self) -> tuple[str, str]:
        """(endpoint, model)."""
        return (self.endpoint, self.model)


# The caller's client (or the SDK transport of the default client) -> its Capabilities; and
# each per-call copy -> its owner's Capabilities. Weak: both die with their clients.
_memory: weakref.WeakKeyDictionary[Any, Capabilities] = weakref.WeakKeyDictionary()
_memory_of_copy: weakref.WeakKeyDictionary[Any, Capabilities] = weakref.WeakKeyDictionary()
# The caller's client -> (its settings when copied, the copy): see _resolved().
_copies: weakref.WeakKeyDictionary[Any, tuple[tuple[object, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
_memory_lock = threading.Lock()


def _memory_for(owner: object) -> Capabilities:
    with _memory_lock:
        found = _memory.get(owner)
        if found is None:
            found = _memory[owner] = Capabilities()
        return found


def capabilities(client: openai.OpenAI | openai.AsyncOpenAI) -> Capabilities:
    """The capabilities classify() has learnt for ``client``'s endpoints (inspect or reset).

    Raises:
        TypeError: ``client`` is not an OpenAI client.
    """
    if not isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        raise TypeError(
            f"client must be an openai.OpenAI or openai.AsyncOpenAI, not {type(client).__name__}"
        )
    found = _memory_of_copy.get(client)
    return found if found is not None else _memory_for(client)


def client_type_error(where: str, expected: str, client: object) -> TypeError:
    """The TypeError for a client of the wrong kind, naming the client type ``where`` needs."""
    message = f"{where} needs an openai.{expected} client, not {type(client).__name__}"
    if expected == "OpenAI" and isinstance(client, openai.AsyncOpenAI):
        message += " (for an async client, await the async sibling: aclassify, AsyncTunedModel...)"
    elif expected == "AsyncOpenAI" and isinstance(client, openai.OpenAI):
        message += " (a sync client would block the event loop; use the sync sibling)"
    return TypeError(message)


def _fingerprint(client: object) -> tuple[object, ...]:
    """What the client's requests depend on: every attribute but its resource objects.

    Dicts (headers, query) are snapshotted, so changing them in place counts too.
    """
    return tuple(
        dict(value) if isinstance(value, dict) else value
        for value in vars(client).values()
        # Resources (client.chat, ...) are cached views of the client itself: not settings,
        # and holding them here would keep the client alive.
        if not type(value).__module__.startswith("openai.resources")
    )


def _unchanged(before: tuple[object, ...], now: tuple[object, ...]) -> bool:
    return len(before) == len(now) and all(
        a is b or (isinstance(a, dict) and a == b) for a, b in zip(before, now, strict=True)
    )


def _resolved(client: Any, where: str, kind: type[Any], resolve: Callable[[Any], Any]) -> Any:
    if client is not None and not isinstance(client, kind):
        raise client_type_error(where, kind.__name__, client)
    if client is not None:
        # The SDK-retries-off copy is reused only while every setting of the caller's client
        # is the very object it was made from: a rotated api_key, a new base_url, changed
        # headers or timeout make a new copy (with_options costs ~60-70 us per call).
        now = _fingerprint(client)
        cached = _copies.get(client)
        if cached is not None and _unchanged(cached[0], now):
            return cached[1]
    copy = resolve(client)
    if client is not None:
        with _memory_lock:
            _copies[client] = (now, copy)
    # No client given: the default client's memory lives on its transport, which every
    # with_options() copy of it shares (the default client object itself is not ours).
    owner = client if client is not None else getattr(copy, "_client", copy)
    memory = _memory_for(owner)
    with _memory_lock:
        _memory_of_copy[copy] = memory
    return copy


def sync_client(client: openai.OpenAI | None, where: str = "classify()") -> openai.OpenAI:
    """The client to send with, derived now from ``client`` (or the default), retries off.

    Raises:
        TypeError: ``client`` is not an ``openai.OpenAI`` (``where`` names the entry point).
    """
    found: openai.OpenAI = _resolved(client, where, openai.OpenAI, resolve_client)
    return found


def async_client(
    client: openai.AsyncOpenAI | None, where: str = "aclassify()"
) -> openai.AsyncOpenAI:
    """The async sibling of :func:`sync_client`."""
    found: openai.AsyncOpenAI = _resolved(client, where, openai.AsyncOpenAI, resolve_async_client)
    return found


def capability_key(client: openai.OpenAI | openai.AsyncOpenAI, model: str) -> CapabilityKey:
    """Where the capabilities of ``model`` behind ``client`` are remembered.

    ``client`` is one :func:`sync_client`/:func:`async_client` returned (or the caller's own).
    """
    return CapabilityKey(capabilities(client), str(client.base_url), model)


def known_refusals(key: CapabilityKey) -> frozenset[str]:
    """The parameters the endpoint refused for the model, as far as this client knows."""
    return key.memory._refused.get(key.pair, frozenset())


def remember_refusal(key: CapabilityKey, param: str) -> None:
    """Remember that the endpoint refused ``param`` for the model."""
    memory = key.memory
    with memory._lock:
        memory._refused[key.pair] = memory._refused.get(key.pair, frozenset()) | {param}


def is_settled(key: CapabilityKey) -> bool:
    """True once a classification has succeeded with the model at the endpoint."""
    return key.pair in key.memory._settled


def mark_settled(key: CapabilityKey) -> None:
    """Record that a classification succeeded (concurrent callers need not probe first)."""
    if key.pair not in key.memory._settled:
        with key.memory._lock:
            key.memory._settled.add(key.pair)


def note_off_label(key: CapabilityKey) -> bool:
    """Count one off-label answer under ``logit_bias``; True when it makes the case.

    After :data:`OFF_LABEL_STRIKES` in a row, ``logit_bias`` is remembered as refused.
    """
    memory = key.memory
    with memory._lock:
        strikes = memory._strikes.get(key.pair, 0) + 1
        memory._strikes[key.pair] = strikes
    if strikes >= OFF_LABEL_STRIKES:
        remember_refusal(key, "logit_bias")
        return True
    return False


def note_followed_bias(key: CapabilityKey) -> None:
    """An answer that followed ``logit_bias``: earlier off-label answers were flukes."""
    if key.pair in key.memory._strikes:
        with key.memory._lock:
            key.memory._strikes.pop(key.pair, None)


def forget_capabilities(client: openai.OpenAI | openai.AsyncOpenAI | None = None) -> None:
    """Forget what was learnt for ``client`` (for every client when None)."""
    if client is not None:
        capabilities(client).reset()
        return
    with _memory_lock:
        memories = list(_memory.values())
    for memory in memories:
        memory.reset()


def refused_parameter(exc: openai.BadRequestError, body: Mapping[str, Any]) -> str | None:
    """The parameter we added that ``exc`` refuses, or None when the 400 is about something else.

    OpenAI names it in ``param`` (``unsupported_parameter``/``unsupported_value``, or ``None``
    for a ``logit_bias`` key outside the vocabulary); some compatible servers only quote it in
    the message.
    """
    param = exc.param.split(".", 1)[0].split("[", 1)[0] if exc.param else None
    if param is not None:
        return param if param in OWN_PARAMS and param in body else None
    if exc.code in _REFUSAL_CODES:
        message = str(exc.message)
        for name in OWN_PARAMS:  # longest first, so max_completion_tokens beats max_tokens
            if name in body and f"'{name}'" in message:
                return name
    return None
