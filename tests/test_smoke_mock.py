from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import openai
    import respx


def test_mock_sees_sdk_requests(api: respx.Router, client: openai.OpenAI) -> None:
    route = api.get("/models/gpt-4o").mock(
        return_value=httpx.Response(
            200, json={"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "openai"}
        )
    )
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    assert route.called
