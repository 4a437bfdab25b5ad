"""Which kind of endpoint a base URL belongs to: the facts (dates, prices) depend on it.

OpenAI's lifecycle dates apply to api.openai.com, Azure's to Azure OpenAI / Foundry; any other
OpenAI-compatible server - including finetune_kit's own local backend - gets no lifecycle
dates at all, because its models are not OpenAI's and do not retire with them.
"""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import urlsplit

__all__ = ["ENDPOINT_KINDS", "EndpointKind", "check_endpoint_kind", "endpoint_kind_of_url"]

EndpointKind = Literal["openai", "azure", "other"]
"""``"openai"`` (api.openai.com), ``"azure"`` (Azure OpenAI / Foundry) or ``"other"``."""

ENDPOINT_KINDS: Final[tuple[EndpointKind, ...]] = ("openai", "azure", "other")

_OPENAI_HOSTS: Final = frozenset({"api.openai.com"})
# Azure OpenAI resources (<name>.openai.azure.com), Foundry resources
# (<name>.services.ai.azure.com) and multi-service Cognitive Services resources.
_AZURE_SUFFIXES: Final = (
    ".openai.azure.com",
    ".services.ai.azure.com",
    ".cognitiveservices.azure.com",
)


def endpoint_kind_of_url(url: str) -> EndpointKind:
    """The kind of endpoint a base URL points at (``"other"`` when in doubt)."""
    host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower().rstrip(".")
    if host in _OPENAI_HOSTS:
        return "openai"
    if host.endswith(_AZURE_SUFFIXES):
        return "azure"
    return "other"


def check_endpoint_kind(value: object) -> EndpointKind:
    """``value`` as an :data:`EndpointKind`, or a ValueError naming the accepted ones."""
    for kind in ENDPOINT_KINDS:
        if value == kind:
            return kind
    raise ValueError(
        f"endpoint must be one of {', '.join(map(repr, ENDPOINT_KINDS))}, not {value!r}"
    )
