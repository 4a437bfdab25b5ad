"""Azure's shape on the local backend: the mounted control plane, deployments on the data
plane, the ``trainingType`` tier and Azure-style tuned model ids (in process)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import openai
import pytest

from finetune_kit.local import LocalServer, StaticToken, in_process_http_client

from .helpers import small_training_file, upload

if TYPE_CHECKING:
    from pathlib import Path

    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RecordingClock

_ARM = (
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.CognitiveServices"
    "/accounts/acct/deployments"
)
_QUERY = "?api-version=2024-10-01"
_AUTH = {"authorization": "Bearer any-token"}
_ASK: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Which planet is closest to the sun?"}
]


def _arm(server: LocalServer) -> Any:
    return in_process_http_client(server.app)


def _put(http: Any, server: LocalServer, name: str, model: str) -> Any:
    body = {
        "sku": {"name": "GlobalStandard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": model}},
    }
    return http.put(f"{server.management_url}{_ARM}/{name}{_QUERY}", json=body, headers=_AUTH)


def _trained(
    server: LocalServer, clock: RecordingClock, client: openai.OpenAI, **extra: Any
) -> Any:
    file_id = upload(client, small_training_file())
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=file_id, suffix="Tickets 1", **extra
    )
    for _ in range(200):
        job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status in ("succeeded", "failed"):
            break
        clock.advance(1.0)
    assert job.status == "succeeded", job.error
    del server
    return job


def test_azure_jobs_name_models_azures_way_and_keep_the_tier(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    azure = clocked_server.azure_client()
    job = _trained(clocked_server, clock, azure, extra_body={"trainingType": "globalstandard"})
    assert (job.model_extra or {})["trainingType"] == "GlobalStandard"
    assert re.fullmatch(r"gpt-4o-mini-2024-07-18\.ft-[0-9a-f]{32}-tickets-1", job.fine_tuned_model)
    # The OpenAI paths keep OpenAI's names, and know no trainingType.
    openai_job = _trained(clocked_server, clock, clocked_server.client())
    assert openai_job.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:local:")
    assert "trainingType" not in (openai_job.model_extra or {})


@pytest.mark.parametrize("value", ["Premium", "", 3])
def test_an_unknown_training_type_is_a_400(clocked_server: LocalServer, value: object) -> None:
    azure = clocked_server.azure_client()
    file_id = upload(azure, small_training_file())
    with pytest.raises(openai.BadRequestError) as info:
        azure.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=file_id, extra_body={"trainingType": value}
        )
    assert info.value.param == "trainingType"
    assert "GlobalStandard" in info.value.message


def test_the_openai_paths_refuse_a_training_type(clocked_server: LocalServer) -> None:
    client = clocked_server.client()
    file_id = upload(client, small_training_file())
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument"):
        client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=file_id, extra_body={"trainingType": "Standard"}
        )


def test_a_deployment_serves_its_model_once_provisioned_and_until_deleted(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    azure = clocked_server.azure_client()
    tuned = _trained(clocked_server, clock, azure).fine_tuned_model
    v1 = openai.OpenAI(
        api_key="k",
        base_url=f"{clocked_server.root_url}/openai/v1",
        http_client=in_process_http_client(clocked_server.app),
    )

    def code_of(model: str, client: openai.OpenAI) -> str | None:
        try:
            client.chat.completions.create(model=model, messages=_ASK)
        except openai.NotFoundError as exc:
            return exc.code
        return None

    # Without a deployment a tuned model does not answer on Azure's paths (either API).
    assert code_of(tuned, azure) == "DeploymentNotFound"
    assert code_of(tuned, v1) == "DeploymentNotFound"
    with _arm(clocked_server) as http:
        created = _put(http, clocked_server, "classifier", tuned)
        assert created.status_code == 201
        assert created.json()["properties"]["provisioningState"] == "Creating"
        assert code_of("classifier", azure) == "DeploymentNotFound"  # still provisioning
        clock.advance(2.0)
        assert (
            http.get(
                f"{clocked_server.management_url}{_ARM}/classifier{_QUERY}", headers=_AUTH
            ).json()["properties"]["provisioningState"]
            == "Succeeded"
        )
        reply = azure.chat.completions.create(model="classifier", messages=_ASK)
        assert reply.choices[0].message.content
        assert code_of("classifier", v1) is None
        # A deployment of an unknown model is refused, as ARM does.
        assert _put(http, clocked_server, "other", "gpt-4o-mini.ft-unknown").status_code == 400
        deleted = http.delete(
            f"{clocked_server.management_url}{_ARM}/classifier{_QUERY}", headers=_AUTH
        )
        assert deleted.status_code == 200
    assert code_of("classifier", azure) == "DeploymentNotFound"
    # Base models need no deployment here; the OpenAI paths name models as before.
    assert code_of("gpt-4o-mini", azure) is None
    assert code_of(tuned, clocked_server.client()) is None
    v1.close()


def test_arm_takes_the_servers_key_as_its_bearer_token(clock: RecordingClock) -> None:
    with (
        LocalServer(clock=clock, in_process=True, api_key="sk-local-secret") as server,
        _arm(server) as http,
    ):
        refused = _put(http, server, "d", "gpt-4o-mini")
        assert refused.status_code == 401
        token = StaticToken("sk-local-secret").get_token("https://management.azure.com/.default")
        body = {
            "sku": {"name": "Standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": "gpt-4o-mini"}},
        }
        accepted = http.put(
            f"{server.management_url}{_ARM}/d{_QUERY}",
            json=body,
            headers={"authorization": f"Bearer {token.token}"},
        )
        assert accepted.status_code == 201
    assert "secret" not in repr(StaticToken("sk-local-secret"))


async def test_the_async_azure_client_reaches_the_azure_paths_in_process(
    clocked_server: LocalServer,
) -> None:
    async with clocked_server.async_azure_client() as azure:
        assert isinstance(azure, openai.AsyncAzureOpenAI)
        reply = await azure.chat.completions.create(model="gpt-4o-mini", messages=_ASK)
        assert reply.choices[0].message.content
        with pytest.raises(openai.NotFoundError) as info:
            await azure.chat.completions.create(model="no-such-deployment", messages=_ASK)
    assert info.value.code == "DeploymentNotFound"


def test_an_azure_job_survives_a_restart(tmp_path: Path, clock: RecordingClock) -> None:
    with LocalServer(clock=clock, in_process=True, data_dir=tmp_path) as first:
        job = _trained(first, clock, first.azure_client(), extra_body={"trainingType": "Standard"})
        with _arm(first) as http:
            assert _put(http, first, "kept", job.fine_tuned_model).status_code == 201
    with LocalServer(clock=clock, in_process=True, data_dir=tmp_path) as second:
        again = second.azure_client().fine_tuning.jobs.retrieve(job.id)
        assert again.fine_tuned_model == job.fine_tuned_model
        assert (again.model_extra or {})["trainingType"] == "Standard"
        # Deployments are kept in memory only: none survives the restart.
        with _arm(second) as http:
            listed = http.get(f"{second.management_url}{_ARM}{_QUERY}", headers=_AUTH)
            assert listed.json() == {"value": []}
