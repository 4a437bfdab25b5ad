"""Injected faults: each kind, per endpoint, deterministic by seed."""

from __future__ import annotations

import openai
import pytest

from finetune_kit.local import FaultRule, Faults, LocalServer

from .helpers import small_training_file, upload


def test_parse_string_form() -> None:
    faults = Faults.parse(
        "429@POST:/fine_tuning/jobs,first=2,retry_after=3;"
        "drop-after@POST:/files,first=1;slow@*,rate=0.1,delay=2;quota@/models;seed=7"
    )
    assert faults.seed == 7
    assert faults.rules == [
        FaultRule("rate_limit", "/fine_tuning/jobs", "POST", first=2, retry_after=3.0),
        FaultRule("drop_after", "/files", "POST", first=1),
        FaultRule("slow", "*", None, rate=0.1, delay=2.0),
        FaultRule("insufficient_quota", "/models"),
    ]


@pytest.mark.parametrize(
    "spec",
    ["boom@/files", "429", "429@/files,first", "429@/files,first=x", "429@/files,color=red"],
)
def test_parse_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="fault"):
        Faults.parse(spec)


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="rate"):
        FaultRule("drop", rate=1.5)
    with pytest.raises(ValueError, match="kind"):
        FaultRule("explode")  # type: ignore[arg-type]


def _server(spec: str, *, in_process: bool = True) -> LocalServer:
    return LocalServer(faults=Faults.parse(spec), speed=100.0, in_process=in_process)


def test_rate_limit_then_success() -> None:
    with _server("429@GET:/models,first=2,retry_after=2") as server:
        client = server.client(max_retries=0)
        for _ in range(2):
            with pytest.raises(openai.RateLimitError) as info:
                client.models.list()
            assert info.value.code == "rate_limit_exceeded"
            assert info.value.response.headers["retry-after"] == "2"
            assert info.value.response.headers["retry-after-ms"] == "2000"
            assert info.value.response.headers["x-request-id"].startswith("req_")
        assert client.models.list().data
        # Other endpoints are untouched.
        assert client.files.list().data == []


def test_insufficient_quota() -> None:
    with _server("quota@*") as server:
        with pytest.raises(openai.RateLimitError) as info:
            server.client(max_retries=0).models.list()
        assert info.value.code == "insufficient_quota"
        assert isinstance(info.value.body, dict)
        assert info.value.body["type"] == "insufficient_quota"


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("503", 503)])
def test_server_errors(kind: str, status: int) -> None:
    with _server(f"{kind}@/files,first=1") as server:
        client = server.client(max_retries=0)
        with pytest.raises(openai.InternalServerError) as info:
            client.files.list()
        assert info.value.status_code == status
        assert client.files.list().data == []


@pytest.mark.parametrize("in_process", [True, False])
def test_drop_performs_nothing(in_process: bool) -> None:
    with _server("drop@POST:/files,first=1", in_process=in_process) as server:
        client = server.client(max_retries=0)
        with pytest.raises(openai.APIConnectionError):
            upload(client, small_training_file(12))
        assert client.files.list().data == []


@pytest.mark.parametrize("in_process", [True, False])
def test_drop_after_performs_the_request(in_process: bool) -> None:
    with _server("drop-after@POST:/fine_tuning/jobs,first=1", in_process=in_process) as server:
        client = server.client(max_retries=0)
        file_id = upload(client, small_training_file(12))
        with pytest.raises(openai.APIConnectionError):
            client.fine_tuning.jobs.create(
                model="gpt-4o-mini", training_file=file_id, metadata={"key": "k1"}
            )
        # The client saw an error, yet the job exists: what idempotency keys are for.
        (job,) = client.fine_tuning.jobs.list(metadata={"key": "k1"}).data
        assert job.training_file == file_id


def test_error_after_performs_the_request() -> None:
    with _server("500-after@POST:/files,first=1") as server:
        client = server.client(max_retries=0)
        with pytest.raises(openai.InternalServerError):
            upload(client, small_training_file(12))
        assert len(client.files.list().data) == 1


def test_slow_response_times_out() -> None:
    with _server("slow@GET:/models,first=1,delay=0.3", in_process=False) as server:
        client = server.client(max_retries=0, timeout=0.1)
        with pytest.raises(openai.APITimeoutError):
            client.models.list()
        assert client.models.list().data


async def test_slow_response_times_out_in_process() -> None:
    # The request's read timeout applies in process too; the slow answer is cancelled.
    with _server("slow@GET:/models,first=1,delay=60") as server:
        client = server.async_client(max_retries=0, timeout=0.05)
        with pytest.raises(openai.APITimeoutError):
            await client.models.list()
        assert (await client.models.list()).data
        await client.close()


def test_rate_is_deterministic_by_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        faults = Faults([FaultRule("server_error", "/models", rate=0.5)], seed=seed)
        return [faults.pick("GET", "/models") is not None for _ in range(40)]

    assert pattern(1) == pattern(1)
    assert pattern(1) != pattern(2)
    assert 5 < sum(pattern(1)) < 35


def test_sdk_retries_recover_from_faults() -> None:
    """The SDK's own retry loop (retry-after honoured) gets through transient faults."""
    # The SDK waits what retry-after-ms announces (10 ms here); without a usable one (a 503,
    # or retry_after=0) it backs off for about half a second a retry.
    with _server(
        "429@GET:/models,first=1,retry_after=0.01;429@GET:/files,first=2,retry_after=0.01"
    ) as server:
        client = server.client(max_retries=2)
        assert client.models.list().data
        assert client.files.list().data == []
