"""End to end on Azure's shape: train with a tier, deploy, classify, evaluate, undeploy.

The real ``openai.AzureOpenAI`` / ``AsyncAzureOpenAI`` clients talk to the local backend's
Azure paths, and ``AzureDeployments`` to the same server's control plane (ARM, at its root).
ARM clients use azure-core's own HTTP stack, so the server listens on loopback here; its
clock is the test's, and every wait the library makes advances it instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

pytest.importorskip("azure.core")
pytest.importorskip("aiohttp")

from finetune_kit import (
    AsyncAzureDeployments,
    AsyncJob,
    AsyncTunedModel,
    AzureDeployments,
    AzureResource,
    Dataset,
    FinetuneKitWarning,
    Job,
    TunedModel,
    aclassify,
    classify,
)
from finetune_kit.facts._tokens import base_model_name
from finetune_kit.local import (
    AsyncStaticToken,
    FaultRule,
    Faults,
    LocalServer,
    StaticToken,
)
from tests.dates import today_is

if TYPE_CHECKING:
    from collections.abc import Iterator

    import respx

    from finetune_kit import RetryPolicy
    from tests.conftest import RecordingClock
    from tests.fake_openai import FakeJobs

#: A dated snapshot: Azure trains snapshots, and names tuned models "<snapshot>.ft-<id>".
MODEL = "gpt-4o-mini-2024-07-18"
DEPLOYMENT = "topics"
_TEXT = "Which planet is closest to the sun?"


@pytest.fixture(autouse=True)
def _a_day_without_lifecycle_warnings() -> Iterator[None]:
    with today_is(dt.date(2026, 6, 1)):
        yield


@pytest.fixture
def server(clock: RecordingClock) -> Iterator[LocalServer]:
    """The local backend on loopback (ARM clients need a socket), on the test's clock."""
    with LocalServer(clock=clock) as running:
        yield running


def _arm_deployments(server: LocalServer) -> list[str]:
    """The deployment names ARM lists for the test's account (read with plain HTTP)."""
    url = server.management_url + _resource(server).path() + "?api-version=2024-10-01"
    reply = httpx.get(url, headers={"authorization": "Bearer local"})
    return [item["name"] for item in reply.json()["value"]]


def _resource(server: LocalServer) -> AzureResource:
    return AzureResource(
        "sub-local", "rg-local", "acct-local", management_url=server.management_url
    )


def _not_found(exc: pytest.ExceptionInfo[openai.NotFoundError]) -> str | None:
    body = exc.value.body
    return body.get("code") if isinstance(body, dict) else None


def test_azure_flow_end_to_end(
    clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    # The first PUT on ARM makes the deployment, then answers 500. (A connection dropped
    # mid-reply reaches AzureDeployments as azure-core's HttpResponseError, which it does not
    # retry, so the fault here is the 500 a gateway gives.)
    lost_put = FaultRule("error_after", method="PUT", path="/subscriptions/*", first=1)
    with LocalServer(clock=clock, faults=Faults([lost_put])) as server:
        _azure_flow(server, clock, data)


def _azure_flow(
    server: LocalServer, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    train, held_out, labels = data
    azure = server.azure_client()
    policy = clock.policy()
    job = Job.create(
        train, model=MODEL, validation=held_out, tier="global", seed=7, client=azure, retry=policy
    )
    assert (job.raw.model_extra or {})["trainingType"] == "GlobalStandard"
    tuned = job.wait(progress=False, poll_interval=1.0)
    # Azure's form of a tuned model's id, which the facts map back to the base.
    assert tuned.name.startswith(f"{MODEL}.ft-")
    assert base_model_name(tuned.name) == "gpt-4o-mini"

    # A tuned model answers on Azure only once deployed.
    with pytest.raises(openai.NotFoundError) as missing:
        classify(_TEXT, labels=labels, model=tuned.name, client=azure, retry=policy)
    assert _not_found(missing) == "DeploymentNotFound"

    deployments = AzureDeployments(
        _resource(server), credential=StaticToken(), retry=policy, poll_interval=1.0
    )
    try:
        deployment = deployments.deploy(tuned.name, name=DEPLOYMENT, sku="GlobalStandard")
        assert deployment.ready
        assert (deployment.model, deployment.sku) == (tuned.name, "GlobalStandard")
        # The PUT whose reply was lost is not repeated into a second deployment.
        assert _arm_deployments(server) == [DEPLOYMENT]

        answer = classify(
            _TEXT, labels=labels, model=DEPLOYMENT, base_model=MODEL, client=azure, retry=policy
        )
        assert answer.label in labels
        evaluation = TunedModel(DEPLOYMENT, client=azure, base_model=MODEL).evaluate(
            held_out, retry=policy, progress=False
        )
        assert evaluation.accuracy >= 0.8

        assert deployments.undeploy(DEPLOYMENT) is True
        assert deployments.get(DEPLOYMENT) is None
    finally:
        deployments.close()
    with pytest.raises(openai.NotFoundError) as gone:
        classify(_TEXT, labels=labels, model=DEPLOYMENT, base_model=MODEL, client=azure)
    assert _not_found(gone) == "DeploymentNotFound"
    # Base models need no deployment on the local backend.
    assert classify(_TEXT, labels=labels, model=MODEL, client=azure, retry=policy).label in labels


async def test_azure_flow_end_to_end_async(
    server: LocalServer, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    train, held_out, labels = data
    policy = clock.policy()
    async with server.async_azure_client() as azure:
        assert isinstance(azure, openai.AsyncAzureOpenAI)
        job = await AsyncJob.create(
            train, model=MODEL, validation=held_out, tier="developer", client=azure, retry=policy
        )
        assert (job.raw.model_extra or {})["trainingType"] == "Developer"
        tuned = await job.wait(progress=False, poll_interval=1.0)
        assert tuned.name.startswith(f"{MODEL}.ft-")
        deployments = AsyncAzureDeployments(
            _resource(server), credential=AsyncStaticToken(), retry=policy, poll_interval=1.0
        )
        try:
            deployment = await deployments.deploy(tuned.name, name=DEPLOYMENT, sku="Developer")
            assert deployment.ready
            answer = await aclassify(
                _TEXT, labels=labels, model=DEPLOYMENT, base_model=MODEL, client=azure
            )
            assert answer.label in labels
            evaluation = await AsyncTunedModel(DEPLOYMENT, client=azure, base_model=MODEL).evaluate(
                held_out, retry=policy, progress=False
            )
            assert evaluation.accuracy >= 0.8
            assert await deployments.undeploy(DEPLOYMENT) is True
        finally:
            await deployments.close()
        with pytest.raises(openai.NotFoundError) as gone:
            await aclassify(_TEXT, labels=labels, model=DEPLOYMENT, base_model=MODEL, client=azure)
        assert _not_found(gone) == "DeploymentNotFound"


def test_the_openai_v1_client_on_azure_paths_uses_the_deployment(
    server: LocalServer, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    """``OpenAI(base_url=<endpoint>/openai/v1)``, Azure's v1 API: ``model=`` names a deployment."""
    train, _, labels = data
    policy = clock.policy()
    v1 = openai.OpenAI(api_key="local", base_url=f"{server.root_url}/openai/v1")
    with v1:
        tuned = Job.create(train, model=MODEL, client=v1, retry=policy).wait(
            progress=False, poll_interval=1.0
        )
        assert ".ft-" in tuned.name
        with pytest.raises(openai.NotFoundError):
            classify(_TEXT, labels=labels, model=tuned.name, client=v1, retry=policy)
        deployments = AzureDeployments(
            _resource(server), credential=StaticToken(), retry=policy, poll_interval=1.0
        )
        try:
            deployments.deploy(tuned.name, name=DEPLOYMENT)
            assert (
                classify(
                    _TEXT,
                    labels=labels,
                    model=DEPLOYMENT,
                    base_model=MODEL,
                    client=v1,
                    retry=policy,
                ).label
                in labels
            )
        finally:
            deployments.undeploy(DEPLOYMENT)
            deployments.close()


# --- the calendar: whose retirement dates apply ------------------------------------------------


def test_an_azure_job_after_openais_cutoff_is_not_warned_as_retired(
    server: LocalServer, clock: RecordingClock, data: tuple[Dataset, Dataset, list[str]]
) -> None:
    # OpenAI retires gpt-4o-mini-2024-07-18 on 2027-01-14; Azure trains it until about
    # 2027-04-14, so the only warning is Azure's own "training ends soon".
    with today_is(dt.date(2027, 2, 1)), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = Job.create(data[0], model=MODEL, client=server.azure_client(), retry=clock.policy())
    messages = [str(w.message) for w in caught]
    assert messages == [
        "gpt-4o-mini training ends on about 2027-04-14 (in 72 days) on Azure: new jobs on it "
        "are refused from then"
    ]
    assert job.status == "validating_files"


@pytest.mark.usefixtures("openai_endpoint")
def test_an_openai_job_after_openais_cutoff_is_warned_as_retired(
    fake: FakeJobs, client: openai.OpenAI, policy: RetryPolicy, api: respx.Router
) -> None:
    with today_is(dt.date(2027, 2, 1)), pytest.warns(FinetuneKitWarning, match="retired"):
        Job.create("file-train", model=MODEL, client=client, retry=policy)
    assert len(fake.created) == 1
    del api
