"""Hand-built chat completion bodies and error responses for the classify tests (no tests here).

The bodies are the JSON the service sends, so they exercise the SDK's own parsing too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Sequence

    import respx


def completion(
    content: str | None,
    *,
    top: Sequence[tuple[str, float]] | None = None,
    logprob: float | None = None,
    prompt_tokens: int = 20,
    completion_tokens: int = 1,
    refusal: str | None = None,
    model: str = "gpt-4o-mini",
) -> dict[str, Any]:
    """A ``chat.completion`` body; ``top`` gives the first token's top_logprobs."""
    logprobs = None
    if top is not None and content is not None:
        chosen = logprob if logprob is not None else dict(top).get(content, -0.01)
        logprobs = {
            "content": [
                {
                    "token": content,
                    "bytes": list(content.encode()),
                    "logprob": chosen,
                    "top_logprobs": [
                        {"token": t, "bytes": list(t.encode()), "logprob": lp} for t, lp in top
                    ],
                }
            ],
            "refusal": None,
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": logprobs,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def ok(content: str | None, **kwargs: Any) -> httpx.Response:
    """A 200 response carrying :func:`completion` (keyword arguments as there)."""
    return httpx.Response(200, json=completion(content, **kwargs))


def refused(
    param: str | None, *, code: str | None = "unsupported_parameter", message: str | None = None
) -> httpx.Response:
    """The 400 OpenAI sends for a parameter a model does not take."""
    text = message or f"Unsupported parameter: '{param}' is not supported with this model."
    error = {"message": text, "type": "invalid_request_error", "param": param, "code": code}
    return httpx.Response(400, json={"error": error})


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    """The JSON bodies of every request ``route`` saw, in order."""
    return [json.loads(call.request.content) for call in route.calls]


def system_prompt(body: dict[str, Any]) -> str:
    """The system message classify sent."""
    first = body["messages"][0]
    assert first["role"] == "system"
    content: str = first["content"]
    return content
