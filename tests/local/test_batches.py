"""Batches over /v1/chat/completions on the local backend."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NoReturn

import openai
import pytest

from .helpers import jsonl, upload

if TYPE_CHECKING:
    from finetune_kit.local import LocalServer, ManualClock

PROMPT = "Answer with one of: yes, no"


def _line(custom_id: str, body: dict[str, object]) -> dict[str, object]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def test_batch_lifecycle_output_and_error_files(
    clocked_server: LocalServer, clock: ManualClock
) -> None:
    client = clocked_server.client(max_retries=0)
    good = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": PROMPT}]}
    lines = [
        _line("a", {**good, "temperature": 0}),
        _line("b", {**good, "temperature": 0, "max_tokens": 1}),
        _line("c", {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
    ]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(lines), purpose="batch"),
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"purpose": "test"},
    )
    assert batch.status == "validating"
    clock.advance(0.3)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "in_progress"
    assert batch.request_counts is not None
    assert batch.request_counts.total == 3
    clock.advance(0.7)
    assert client.batches.retrieve(batch.id).status == "finalizing"
    clock.advance(0.2)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
    assert batch.metadata == {"purpose": "test"}

    out = [json.loads(x) for x in client.files.content(str(batch.output_file_id)).text.splitlines()]
    assert [o["custom_id"] for o in out] == ["a", "b"]
    for o in out:
        assert o["error"] is None
        assert o["response"]["status_code"] == 200
        assert o["response"]["request_id"].startswith("req_")
        assert o["response"]["body"]["choices"][0]["message"]["content"] in ("yes", "no")
    err = [json.loads(x) for x in client.files.content(str(batch.error_file_id)).text.splitlines()]
    assert [e["custom_id"] for e in err] == ["c"]
    assert err[0]["response"]["status_code"] == 404
    assert err[0]["error"]["code"] == "model_not_found"
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_malformed_batch_file_fails(clocked_server: LocalServer, clock: ManualClock) -> None:
    client = clocked_server.client(max_retries=0)
    batch = client.batches.create(
        input_file_id=upload(client, b"not json\n", purpose="batch"),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    clock.advance(1)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "failed"
    assert batch.errors is not None
    assert batch.errors.data
    assert batch.errors.data[0].line == 1


def test_batch_cancel_and_bad_requests(clocked_server: LocalServer) -> None:
    client = clocked_server.client(max_retries=0)
    file_id = upload(client, jsonl([_line("a", {"model": "gpt-4o-mini"})]), purpose="batch")
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")


def test_an_internal_error_fails_the_batch_not_the_server(
    clocked_server: LocalServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = clocked_server.client(max_retries=0)
    file_id = upload(client, jsonl([_line("a", {"model": "gpt-4o-mini"})]), purpose="batch")
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    def bug(_data: bytes) -> NoReturn:
        raise RuntimeError("a bug reading the batch's lines")

    monkeypatch.setattr("finetune_kit.local._batches.batch_lines", bug)
    clock.advance(0.3)  # validating ends: reading the lines hits the bug
    assert client.batches.retrieve(batch.id).status == "failed"
    assert client.models.list().data
