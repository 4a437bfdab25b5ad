"""Hand-built chat completion bodies and error responses for the classify tests (no tests here).

The bodies are the JSON the service sends, so they exercise the SDK's own parsing too.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import respx

#: The labels the batch fakes answer with by default.
LABELS = ("cat", "dog", "bird")


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


def label_in(body: dict[str, Any], labels: Sequence[str] = LABELS) -> str | None:
    """The first of ``labels`` named in the last message of a request body."""
    text = body["messages"][-1]["content"]
    return next((label for label in labels if label in text), None)


def answer_batch_line(body: dict[str, Any]) -> dict[str, Any]:
    """The batch output line's ``response`` for a request body ("boom" fails)."""
    label = label_in(body)
    if label is None:
        error = {"message": "boom", "type": "server_error", "param": None, "code": None}
        return {"status_code": 500, "request_id": "req_x", "body": {"error": error}}
    return {
        "status_code": 200,
        "request_id": "req_ok",
        "body": completion(label, top=[(label, math.log(0.8))]),
    }


class FakeBatches:
    """Files and batches endpoints: a batch is in progress for ``polls_until_done`` polls,
    then ends as ``outcome`` (with output for the first ``answered`` requests)."""

    def __init__(
        self,
        api: respx.Router,
        *,
        answer: Callable[[dict[str, Any]], dict[str, Any]] = answer_batch_line,
        outcome: str = "completed",
        answered: int | None = None,
        polls_until_done: int = 1,
    ) -> None:
        self.answer = answer
        self.outcome = outcome
        self.answered = answered
        self.polls_until_done = polls_until_done
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.inputs: list[list[dict[str, Any]]] = []
        self.created: list[dict[str, Any]] = []
        api.post("/files").mock(side_effect=self._upload)
        api.post("/batches").mock(side_effect=self._create)
        api.get(url__regex=r".*/batches/(?P<batch_id>[^/]+)$").mock(side_effect=self._retrieve)
        api.get(url__regex=r".*/files/(?P<file_id>[^/]+)/content$").mock(side_effect=self._content)

    def _upload(self, request: httpx.Request) -> httpx.Response:
        lines = re.findall(rb'^\{"custom_id".*$', request.content, flags=re.MULTILINE)
        assert b'name="purpose"\r\n\r\nbatch' in request.content
        file_id = f"file-in-{len(self.files)}"
        self.files[file_id] = b"\n".join(lines) + b"\n"
        self.inputs.append([json.loads(line) for line in lines])
        return httpx.Response(200, json=self._file(file_id, "batch"))

    @staticmethod
    def _file(file_id: str, purpose: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": 1,
            "created_at": 0,
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    def _create(self, request: httpx.Request) -> httpx.Response:
        params = json.loads(request.content)
        self.created.append(params)
        batch_id = f"batch_{len(self.batches)}"
        total = len(self.files[params["input_file_id"]].splitlines())
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": params["endpoint"],
            "input_file_id": params["input_file_id"],
            "completion_window": params["completion_window"],
            "status": "validating",
            "created_at": 0,
            "request_counts": {"total": total, "completed": 0, "failed": 0},
        }
        self.polls[batch_id] = 0
        return httpx.Response(200, json=self.batches[batch_id])

    def _retrieve(self, request: httpx.Request, batch_id: str) -> httpx.Response:
        del request
        batch = self.batches[batch_id]
        self.polls[batch_id] += 1
        if self.polls[batch_id] <= self.polls_until_done:
            batch["status"] = "in_progress"
        elif batch["status"] in ("validating", "in_progress"):
            self._finish(batch)
        return httpx.Response(200, json=batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        batch["status"] = self.outcome
        if self.outcome == "failed":
            batch["errors"] = {
                "object": "list",
                "data": [{"code": "invalid_model", "message": "no such model", "line": 1}],
            }
            return
        requests = [json.loads(line) for line in self.files[batch["input_file_id"]].splitlines()]
        if self.answered is not None:
            requests = requests[: self.answered]
        ok_lines: list[bytes] = []
        error_lines: list[bytes] = []
        for number, request in enumerate(requests):
            response = self.answer(request["body"])
            line = {
                "id": f"batch_req_{number}",
                "custom_id": request["custom_id"],
                "response": response,
                "error": None,
            }
            target = ok_lines if response["status_code"] == 200 else error_lines
            target.append(json.dumps(line).encode())
        for kind, lines in (("output", ok_lines), ("error", error_lines)):
            if lines:
                file_id = f"file-{kind}-{batch['id']}"
                self.files[file_id] = b"\n".join(lines) + b"\n"
                batch[f"{kind}_file_id"] = file_id
        batch["request_counts"]["completed"] = len(ok_lines)
        batch["request_counts"]["failed"] = len(error_lines)

    def _content(self, request: httpx.Request, file_id: str) -> httpx.Response:
        del request
        return httpx.Response(200, content=self.files[file_id])
