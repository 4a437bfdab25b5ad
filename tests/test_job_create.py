"""Job.create against a fake service: the request sent, idempotency, and every fault."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from finetune_kit import (
    AsyncJob,
    Dataset,
    DatasetError,
    FinetuneKitWarning,
    FineTuningUnavailableError,
    Job,
    JobOptions,
    RetryPolicy,
)
from finetune_kit.jobs import _flows as job_module
from finetune_kit.jobs._job import IDEMPOTENCY_METADATA_KEY

from .fake_openai import FakeJobs, Fault, Sleeps, error_response, job_json, transport_timeout

if TYPE_CHECKING:
    from collections.abc import Iterator

    import respx

    from finetune_kit.datasets._reports import DatasetKind
    from finetune_kit.facts._endpoints import EndpointKind


pytestmark = pytest.mark.usefixtures("pinned_today")


def _create(client: openai.OpenAI, policy: RetryPolicy, **options: str) -> Job:
    return Job.create(
        "file-train",
        model="gpt-4o-mini-2024-07-18",
        suffix=options.get("suffix"),
        idempotency_key=options.get("idempotency_key"),
        client=client,
        retry=policy,
    )


def test_create_sends_method_metadata_and_options(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    job = Job.create(
        "file-train",
        model="gpt-4o-mini-2024-07-18",
        validation="file-valid",
        hyperparameters={"n_epochs": 2},
        suffix="tickets",
        seed=7,
        metadata={"team": "support"},
        client=client,
        retry=policy,
    )
    assert job.id == "ftjob-1"
    assert job.status == "validating_files"
    [body] = fake.created
    assert body["training_file"] == "file-train"
    assert body["validation_file"] == "file-valid"
    assert body["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 2}},
    }
    assert body["suffix"] == "tickets"
    assert body["seed"] == 7
    assert body["metadata"]["team"] == "support"
    assert body["metadata"][IDEMPOTENCY_METADATA_KEY].startswith("ftk1-")
    assert "hyperparameters" not in body  # the deprecated top-level field is not sent
    assert fake.calls.get("list", 0) == 0  # a first attempt does not look for anything


def test_dpo_and_reinforcement_payloads(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    Job.create(
        "file-train",
        model="gpt-4.1-mini",
        method="dpo",
        hyperparameters={"beta": 0.2},
        client=client,
        retry=policy,
    )
    grader = {"type": "string_check", "name": "exact", "operation": "eq"}
    Job.create(
        "file-train",
        model="o4-mini",
        method="reinforcement",
        grader=grader,
        client=client,
        retry=policy,
    )
    dpo, rft = fake.created
    assert dpo["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    assert rft["method"] == {"type": "reinforcement", "reinforcement": {"grader": grader}}


def test_connection_drop_after_the_service_created_the_job(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    fake.faults["create"] = [Fault(error=httpx.ConnectError("connection reset"), after=True)]
    job = _create(client, policy)
    assert len(fake.jobs) == 1  # exactly one job exists
    assert job.id == next(iter(fake.jobs))
    assert fake.calls["create"] == 1  # found by its key, not sent again
    assert fake.calls["list"] == 1
    assert sleeps.waits == [0.5]


def test_timeout_after_the_service_created_the_job(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.faults["create"] = [Fault(error=transport_timeout(), after=True)]
    job = _create(client, policy)
    assert list(fake.jobs) == [job.id]
    assert fake.calls["create"] == 1


def test_connection_drop_before_the_service_saw_it_sends_again(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.faults["create"] = [Fault(error=httpx.ConnectError("refused"))]
    job = _create(client, policy)
    assert list(fake.jobs) == [job.id]
    assert fake.calls["create"] == 2
    assert fake.calls["list"] == 1  # looked first, found nothing, then sent


def test_lookup_works_where_the_metadata_filter_is_rejected(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.add(job_json("ftjob-other", metadata={"team": "x"}))
    fake.faults["create"] = [Fault(error=httpx.ConnectError("reset"), after=True)]
    fake.faults["list"] = [Fault(response=error_response(400, message="unknown parameter"))]
    job = _create(client, policy)
    assert job.id == "ftjob-2"  # found among the newest jobs, filtered here
    assert len(fake.jobs) == 2
    assert fake.calls["list"] == 2


def test_rate_limit_storm_honours_retry_after(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    storm = [error_response(429, code="rate_limit_exceeded", retry_after="2") for _ in range(4)]
    fake.faults["create"] = [Fault(response=r) for r in storm]
    job = _create(client, policy)
    assert sleeps.waits == [2.0, 2.0, 2.0, 2.0]
    assert fake.calls["create"] == 5
    assert fake.calls.get("list", 0) == 0  # a 429 is a refusal: nothing to look for
    assert list(fake.jobs) == [job.id]


def test_rate_limit_storm_longer_than_the_budget_raises_the_sdk_error(
    fake: FakeJobs, client: openai.OpenAI, sleeps: Sleeps
) -> None:
    fake.faults["create"] = [
        Fault(response=error_response(429, retry_after_ms="1500")) for _ in range(3)
    ]
    policy = RetryPolicy(max_attempts=3, sleep=sleeps.sleep)
    with pytest.raises(openai.RateLimitError):
        _create(client, policy)
    assert sleeps.waits == [1.5, 1.5]
    assert fake.jobs == {}


def test_server_error_burst_looks_before_each_resend(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, sleeps: Sleeps
) -> None:
    fake.faults["create"] = [
        Fault(response=error_response(500)),
        Fault(response=error_response(502)),
        Fault(response=error_response(503), after=True),  # created, but the reply was a 503
    ]
    job = _create(client, policy)
    assert list(fake.jobs) == [job.id]
    assert fake.calls["create"] == 3
    assert fake.calls["list"] == 3
    assert sleeps.waits == [0.5, 1.0, 2.0]


def test_insufficient_quota_fails_fast(
    fake: FakeJobs,
    client: openai.OpenAI,
    policy: RetryPolicy,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.faults["create"] = [
        Fault(response=error_response(429, code="insufficient_quota", message="You exceeded"))
    ]
    with (
        caplog.at_level(logging.WARNING, logger="finetune_kit"),
        pytest.raises(openai.RateLimitError) as info,
    ):
        _create(client, policy)
    assert info.value.code == "insufficient_quota"
    assert fake.calls["create"] == 1
    assert sleeps.waits == []
    assert fake.jobs == {}
    assert "insufficient_quota" in caplog.text


@pytest.mark.usefixtures("openai_endpoint")
def test_permission_denied_explains_the_wind_down(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.faults["create"] = [
        Fault(response=error_response(403, message="Fine-tuning is not available"))
    ]
    with pytest.raises(FineTuningUnavailableError) as info:
        _create(client, policy)
    message = str(info.value)
    assert "2027-01-06" in message
    assert "Azure OpenAI" in message
    assert "base_url" in message
    assert "local backend" in message
    assert "Fine-tuning is not available" in message
    assert isinstance(info.value.__cause__, openai.PermissionDeniedError)
    assert fake.calls["create"] == 1


def test_unavailable_error_code_also_explains(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.faults["create"] = [Fault(response=error_response(400, code="fine_tuning_not_available"))]
    with pytest.raises(FineTuningUnavailableError):
        _create(client, policy)


def test_a_rejected_training_file_is_not_retried(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.faults["create"] = [
        Fault(
            response=error_response(
                400, code="invalid_training_file", message="file-train is not ready"
            )
        )
    ]
    with pytest.raises(openai.BadRequestError) as info:
        _create(client, policy)
    assert info.value.code == "invalid_training_file"
    assert fake.calls["create"] == 1


def test_explicit_idempotency_key_returns_the_existing_job(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    fake.add(job_json("ftjob-old", metadata={IDEMPOTENCY_METADATA_KEY: "nightly-2026-06-01"}))
    job = _create(client, policy, idempotency_key="nightly-2026-06-01")
    assert job.id == "ftjob-old"
    assert fake.calls.get("create", 0) == 0
    fresh = _create(client, policy, idempotency_key="nightly-2026-06-02")
    assert fresh.id != "ftjob-old"
    assert fake.created[0]["metadata"][IDEMPOTENCY_METADATA_KEY] == "nightly-2026-06-02"


def test_same_request_same_key_other_request_other_key(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    _create(client, policy)
    _create(client, policy)
    _create(client, policy, suffix="other")
    keys = [body["metadata"][IDEMPOTENCY_METADATA_KEY] for body in fake.created]
    # The request's fingerprint, then the call's own random part: every call its own key.
    fingerprints = [key.rsplit("-", 1)[0] for key in keys]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert len(set(keys)) == 3
    assert len(fake.jobs) == 3  # deliberate repeats are new jobs: only retries look


def test_an_old_job_with_the_same_key_is_not_mistaken_for_this_calls(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    first = _create(client, policy)
    fake.jobs[first.id]["created_at"] -= 3600  # an identical job from an hour ago
    fake.faults["create"] = [Fault(error=httpx.ConnectError("refused"))]
    second = _create(client, policy)
    assert second.id != first.id
    assert len(fake.jobs) == 2


@pytest.mark.parametrize(
    ("kind", "method", "model"),
    [
        ("preference", "supervised", "gpt-4o-mini"),
        ("chat", "dpo", "gpt-4o-mini"),
        ("chat", "reinforcement", "o4-mini"),
        ("completion", "supervised", "gpt-4o-mini"),
        ("chat", "supervised", "davinci-002"),
    ],
)
def test_data_that_does_not_fit_is_refused_before_any_request(
    api: respx.Router, client: openai.OpenAI, kind: DatasetKind, method: str, model: str
) -> None:
    dataset = Dataset.from_records([], kind=kind)
    grader = {"type": "string_check"} if method == "reinforcement" else None
    with pytest.raises(DatasetError):
        Job.create(dataset, model=model, method=method, grader=grader, client=client)
    assert not api.calls


def test_argument_mistakes_are_refused_before_any_request(
    api: respx.Router, client: openai.OpenAI
) -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        Job.create("file-train", model="gpt-4o-mini", method="lora", client=client)
    with pytest.raises(ValueError, match="needs grader"):
        Job.create("file-train", model="o4-mini", method="reinforcement", client=client)
    with pytest.raises(ValueError, match="only for method='reinforcement'"):
        Job.create("file-train", model="gpt-4o-mini", grader={"type": "x"}, client=client)
    with pytest.raises(ValueError, match="at most 15"):
        Job.create(
            "file-train",
            model="gpt-4o-mini",
            metadata={f"k{i}": "v" for i in range(16)},
            client=client,
        )
    with pytest.raises(ValueError, match="idempotency_key must be 1 to 512"):
        Job.create("file-train", model="gpt-4o-mini", idempotency_key="k" * 513, client=client)
    with pytest.raises(ValueError, match="finetune_kit's own"):
        Job.create(
            "file-train",
            model="gpt-4o-mini",
            metadata={IDEMPOTENCY_METADATA_KEY: "x"},
            client=client,
        )
    with pytest.raises(TypeError, match=r"^Job\.create\(\) got an unexpected keyword .*'sufix'"):
        Job.create("file-train", model="gpt-4o-mini", sufix="x", client=client)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^AsyncJob\.create\(\) got an unexpected keyword"):
        asyncio.run(
            AsyncJob.create("file-train", model="gpt-4o-mini", epochs=2)  # type: ignore[call-arg]
        )
    assert not api.calls


@pytest.mark.usefixtures("openai_endpoint")
def test_warns_when_the_base_model_retires_soon(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module, "_today", lambda: dt.date(2026, 12, 1))
    with pytest.warns(FinetuneKitWarning, match=r"retires on 2027-01-14 \(in 44 days\)"):
        _create(client, policy)
    assert len(fake.jobs) == 1


@pytest.mark.usefixtures("openai_endpoint")
def test_warns_when_the_base_model_is_already_retired(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module, "_today", lambda: dt.date(2026, 11, 1))
    with pytest.warns(FinetuneKitWarning, match="was retired on 2026-10-23"):
        Job.create("file-train", model="gpt-4.1-nano", client=client, retry=policy)
    del fake


def test_warns_when_the_model_is_not_known_for_the_method(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    with pytest.warns(FinetuneKitWarning, match="not known to support dpo"):
        Job.create(
            "file-train", model="gpt-3.5-turbo-0125", method="dpo", client=client, retry=policy
        )
    assert json.dumps(fake.created[0]["method"]).startswith('{"type": "dpo"')


def test_job_options_are_one_reusable_frozen_copy(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    hyperparameters: dict[str, object] = {"n_epochs": 2}
    metadata = {"team": "support"}
    options = JobOptions(
        model="gpt-4o-mini", hyperparameters=hyperparameters, metadata=metadata, suffix="t"
    )
    hyperparameters["n_epochs"] = 9  # later changes to the caller's dicts change nothing
    metadata["team"] = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.suffix = "u"  # type: ignore[misc]
    first = Job.create_from("file-train", options, client=client, retry=policy)
    second = Job.create(
        "file-train",
        model="gpt-4o-mini",
        hyperparameters={"n_epochs": 2},
        metadata={"team": "support"},
        suffix="t",
        client=client,
        retry=policy,
    )
    assert first.id != second.id
    by_options, by_keywords = fake.created
    for body in (by_options, by_keywords):
        body["metadata"].pop(IDEMPOTENCY_METADATA_KEY)
    assert by_options == by_keywords
    assert by_options["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}
    assert by_options["metadata"] == {"team": "support"}


# --- the Azure training tier -------------------------------------------------------------------


@pytest.fixture
def azure_endpoint() -> Iterator[None]:
    """Calls made in the test count as made on Azure OpenAI, whatever the mocked URL."""
    from finetune_kit import default_session, set_default_session

    previous = set_default_session(default_session().with_options(endpoint="azure"))
    yield
    set_default_session(previous)


@pytest.mark.usefixtures("azure_endpoint")
@pytest.mark.parametrize(
    ("tier", "sent"),
    [("standard", "Standard"), ("global", "GlobalStandard"), ("developer", "Developer")],
)
def test_a_tier_travels_as_azures_training_type(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, tier: str, sent: str
) -> None:
    Job.create("file-train", model="gpt-4o-mini-2024-07-18", tier=tier, client=client, retry=policy)
    assert fake.created[0]["trainingType"] == sent


@pytest.mark.usefixtures("azure_endpoint")
def test_without_a_tier_no_training_type_is_sent(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy
) -> None:
    _create(client, policy)
    assert "trainingType" not in fake.created[0]


@pytest.mark.usefixtures("azure_endpoint")
def test_a_tier_the_model_does_not_offer_is_refused_before_any_request(
    api: respx.Router, client: openai.OpenAI
) -> None:
    # Azure trains the open models on the Global tier only (facts/_models.py).
    with pytest.raises(ValueError, match=r"gpt-oss-20b does not offer the 'standard'.*global"):
        Job.create("file-train", model="gpt-oss-20b", tier="standard", client=client)
    with pytest.raises(ValueError, match="tier must be one of standard, global, developer"):
        Job.create("file-train", model="gpt-4o-mini", tier="GlobalStandard", client=client)
    with pytest.raises(TypeError, match="tier must be a string"):
        JobOptions(model="gpt-4o-mini", tier=1)  # type: ignore[arg-type]
    assert not api.calls


@pytest.mark.parametrize("endpoint", ["openai", "other"])
def test_a_tier_off_azure_is_refused_before_any_request(
    api: respx.Router, client: openai.OpenAI, endpoint: EndpointKind
) -> None:
    from finetune_kit import default_session, set_default_session

    previous = set_default_session(default_session().with_options(endpoint=endpoint))
    try:
        with pytest.raises(ValueError, match=rf"Azure OpenAI option.*endpoint is '{endpoint}'"):
            Job.create("file-train", model="gpt-4o-mini", tier="global", client=client)
    finally:
        set_default_session(previous)
    assert not api.calls
