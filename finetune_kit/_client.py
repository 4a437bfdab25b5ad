"""The client every request goes through: the caller's, or one default per process.

finetune_kit never speaks HTTP itself. Each public call takes ``client=``; when it is omitted,
one client is built from the standard ``OPENAI_*`` environment on first use (never at import,
so importing the package needs no key). Either way the client used is
``client.with_options(max_retries=0)``: the SDK's own retries are off because the retry layer
in ``_retry.py`` decides, and stacked retries would multiply attempts. ``with_options`` keeps
the client's class, so ``AzureOpenAI`` and any ``base_url`` work unchanged.
"""

from __future__ import annotations

import threading

import openai

__all__ = ["resolve_async_client", "resolve_client"]

_lock = threading.Lock()
_default_client: openai.OpenAI | None = None
_default_async_client: openai.AsyncOpenAI | None = None


def _default() -> openai.OpenAI:
    global _default_client
    with _lock:
        if _default_client is None:
            _default_client = openai.OpenAI()
        return _default_client


def _default_async() -> openai.AsyncOpenAI:
    global _default_async_client
    with _lock:
        if _default_async_client is None:
            _default_async_client = openai.AsyncOpenAI()
        return _default_async_client


def resolve_client(client: openai.OpenAI | None) -> openai.OpenAI:
    """The client to send requests with: ``client`` (or the default), SDK retries off.

    Raises:
        openai.OpenAIError: when ``client`` is None and the environment holds no API key.
    """
    return (client or _default()).with_options(max_retries=0)


def resolve_async_client(client: openai.AsyncOpenAI | None) -> openai.AsyncOpenAI:
    """The async sibling of :func:`resolve_client`."""
    return (client or _default_async()).with_options(max_retries=0)


def _reset_defaults() -> None:
    """Forget the default clients (tests; or after changing ``OPENAI_*`` at runtime)."""
    global _default_client, _default_async_client
    with _lock:
        _default_client = None
        _default_async_client = None
