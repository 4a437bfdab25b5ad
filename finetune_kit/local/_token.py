"""``StaticToken``: a credential for the local backend's Azure control plane.

ARM clients (``azure-core`` pipelines, such as ``finetune_kit.AzureDeployments``) ask a
credential for a bearer token. The local backend takes any token (or, when it has an
``api_key``, that key), so a static one does: nothing reaches Azure's sign-in service, unlike
``DefaultAzureCredential``. Duck-typed to ``azure.core``'s credential protocols, sync and
async, so this module needs no Azure package.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

__all__ = ["AsyncStaticToken", "StaticToken"]


class _AccessToken(NamedTuple):
    """The shape of ``azure.core.credentials.AccessToken``."""

    token: str
    expires_on: int


def _fresh(token: str) -> _AccessToken:
    # azure-core compares expiry with the real clock to decide when to ask again.
    return _AccessToken(token, int(time.time()) + 3600)


class StaticToken:
    """A credential that always hands out the same bearer token (for the local backend only).

    Args:
        token: the token to send; the server's ``api_key`` when it requires one.
    """

    def __init__(self, token: str = "local-backend-token") -> None:
        self._token = token

    def __repr__(self) -> str:
        # The token may be the server's API key: never show it.
        return "StaticToken(token=***)"

    def get_token(self, *scopes: str, **kwargs: Any) -> _AccessToken:
        """The token, valid for an hour (azure-core's sync credential protocol)."""
        del scopes, kwargs
        return _fresh(self._token)


class AsyncStaticToken:
    """:class:`StaticToken` for async ARM clients (``AsyncAzureDeployments``)."""

    def __init__(self, token: str = "local-backend-token") -> None:
        self._token = token

    def __repr__(self) -> str:
        return "AsyncStaticToken(token=***)"

    async def get_token(self, *scopes: str, **kwargs: Any) -> _AccessToken:
        """The token, valid for an hour (azure-core's async credential protocol)."""
        del scopes, kwargs
        return _fresh(self._token)

    async def close(self) -> None:
        """Nothing to release."""
