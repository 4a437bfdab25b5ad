"""TunedModel.deploy / undeploy over ARM on loopback; hosting cost; idle deletion; dates."""

from __future__ import annotations

import datetime as dt
import math
import sys
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

pytest.importorskip("azure.core")
pytest.importorskip("aiohttp")
pytest.importorskip("uvicorn")

from finetune_kit import (
    AsyncTunedModel,
    AzureResource,
    Deployment,
    DeploymentError,
    HostingCost,
    TunedModel,
    default_session,
    estimate_hosting_cost,
    set_default_session,
)
from finetune_kit._core.session import facts_for
from finetune_kit.classification._classify import forget_capabilities
from finetune_kit.facts._tokens import FinetuneKitWarning
from finetune_kit.local import ManualClock
from finetune_kit.models._hosting import idle_deadline, idle_warning

from .arm_service import MODEL, AsyncStaticToken, Service, StaticToken, serve
from .fake_openai import BASE_URL, bodies, completion

if TYPE_CHECKING:
    from collections.abc import Iterator

    import respx

NOW = 1_800_000_000.0  # the service's manual clock starts here


@pytest.fixture(scope="module")
def _server() -> Iterator[Service]:
    with serve() as service:
        yield service


@pytest.fixture
def service(_server: Service) -> Iterator[Service]:
    forget_capabilities()
    yield _server.reset()
    forget_capabilities()


def _deploy(service: Service, model: TunedModel, **kwargs: object) -> TunedModel:
    return model.deploy(
        service.resource(),
        credential=StaticToken(),
        retry=service.policy(),
        progress=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_deploy_waits_and_returns_a_handle_on_the_deployment(
    service: Service, client: openai.OpenAI
) -> None:
    tuned = TunedModel(MODEL, client=client, job_id="ftjob-1")
    deployed = _deploy(service, tuned, name="pets")

    assert deployed.name == "pets"
    assert deployed.model_id == MODEL
    assert deployed.deployment == Deployment("pets", MODEL, "Standard", 1, "Succeeded")
    assert deployed.job_id == "ftjob-1"
    assert deployed.base_model == MODEL  # the id tells classify() the encoding
    assert deployed._client is client
    assert repr(deployed) == f"TunedModel('pets', job_id='ftjob-1', model_id={MODEL!r})"
    assert service.faults.seen == ["GET", "PUT"] + ["GET"] * 3  # 30 s in 10 s polls
    # Idempotent: deploying again (from either handle) reuses it.
    assert _deploy(service, deployed).deployment == deployed.deployment
    assert service.faults.seen.count("PUT") == 1
    assert service.count() == 1


def test_default_name_comes_from_the_model_id(service: Service) -> None:
    deployed = _deploy(service, TunedModel(MODEL), wait=False)
    assert deployed.name == MODEL
    assert deployed.deployment is not None
    assert deployed.deployment.state == "Creating"


def test_classify_and_chat_go_through_the_deployment(
    service: Service, api: respx.Router, client: openai.OpenAI
) -> None:
    route = api.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("dog", top=[("dog", math.log(0.9))]))
    )
    deployed = _deploy(service, TunedModel(MODEL, client=client), name="pets")

    assert deployed.classify("it barks", labels=["cat", "dog"]).label == "dog"
    deployed.chat("hi")

    assert [body["model"] for body in bodies(route)] == ["pets", "pets"]
    assert bodies(route)[0]["logit_bias"] == {"8837": 100, "30146": 100}  # o200k_base ids


def test_progress_shows_provisioning_states(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    TunedModel(MODEL).deploy(
        service.resource(), credential=StaticToken(), retry=service.policy(), progress=True
    )
    err = capsys.readouterr().err
    assert f"deploying {MODEL}" in err
    assert "Succeeded" in err


def test_undeploy_deletes_only_this_models_deployment(service: Service) -> None:
    resource = service.resource()
    deployed = _deploy(service, TunedModel(MODEL), name="pets")
    other = TunedModel("gpt-4o-mini-2024-07-18.ft-other")

    with pytest.raises(DeploymentError, match="serves") as info:
        other.undeploy(resource, name="pets", credential=StaticToken(), retry=service.policy())
    assert info.value.status_code == 409
    assert service.count() == 1

    assert deployed.undeploy(resource, credential=StaticToken(), retry=service.policy())
    assert service.count() == 0
    assert not deployed.undeploy(resource, credential=StaticToken(), retry=service.policy())


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (403, "AuthorizationFailed", "deployments/write"),
        (409, "InsufficientQuota", "quota"),
        (400, "LocationNotSupported", "region"),
    ],
)
def test_refusals_carry_their_hint(service: Service, status: int, code: str, hint: str) -> None:
    service.faults.refusals = [("PUT", status, code)]
    with pytest.raises(DeploymentError, match=hint) as info:
        _deploy(service, TunedModel(MODEL))
    assert (info.value.status_code, info.value.code) == (status, code)
    assert service.count() == 0


def test_reusing_a_deployment_near_its_idle_deletion_warns(service: Service) -> None:
    resource = service.resource()
    _deploy(service, TunedModel(MODEL), name="pets")
    changed = dt.datetime.fromtimestamp(NOW, tz=dt.timezone.utc)
    service.faults.system_data = {"lastModifiedAt": changed.isoformat().replace("+00:00", "Z")}
    previous = default_session()
    try:
        set_default_session(previous.with_options(clock=ManualClock(NOW + 5 * 86_400)))
        _deploy(service, TunedModel(MODEL), name="pets")  # day 5: quiet (warnings are errors)
        set_default_session(previous.with_options(clock=ManualClock(NOW + 13.5 * 86_400)))
        with pytest.warns(FinetuneKitWarning, match="may delete it from 2027-01-30"):
            deployed = _deploy(service, TunedModel(MODEL), name="pets")
    finally:
        set_default_session(previous)
    assert deployed.deployment is not None
    assert deployed.deployment.modified_at == changed
    assert resource == service.resource()


def test_idle_deadline_counts_from_the_later_of_change_and_use() -> None:
    changed = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)
    dep = Deployment("d", MODEL, "Standard", 1, "Succeeded", changed, changed)
    assert idle_deadline(dep) == changed + dt.timedelta(days=15)
    used = dt.datetime(2026, 11, 10, 12)  # naive: UTC
    assert idle_deadline(dep, last_used=used) == dt.datetime(
        2026, 11, 25, 12, tzinfo=dt.timezone.utc
    )
    assert idle_deadline(Deployment("d", MODEL, "Standard", 1, "Succeeded")) is None

    day = dt.timedelta(days=1)
    assert idle_warning(dep, now=changed + 12 * day) is None
    assert "from 2026-11-16" in (idle_warning(dep, now=changed + 13 * day) or "")
    assert "any time now" in (idle_warning(dep, now=changed + 16 * day) or "")
    assert idle_warning(dep, now=changed + 14 * day, last_used=used) is None


def test_hosting_cost_comes_from_the_dated_facts() -> None:
    facts = facts_for("azure", MODEL)
    assert facts.hosting_per_hour is not None
    assert facts.checked is not None
    cost = estimate_hosting_cost(MODEL)
    assert cost == HostingCost(MODEL, facts.hosting_per_hour, facts.checked, "Standard")
    assert cost.per_day == pytest.approx(facts.hosting_per_hour * 24)
    assert cost.per_month == pytest.approx(facts.hosting_per_hour * 730)
    assert f"${facts.hosting_per_hour:,.2f}/hour" in str(cost)
    assert facts.checked.isoformat() in str(cost)
    assert "15 days" in str(cost)
    assert estimate_hosting_cost(MODEL, where="other") is None  # no prices for other servers
    developer = estimate_hosting_cost(MODEL, sku="DeveloperTier")
    assert developer is not None
    assert developer.per_month == 0
    assert "no hourly charge" in str(developer)
    assert "24 hours" in str(developer)


async def test_async_twin(service: Service, async_client: openai.AsyncOpenAI) -> None:
    resource = service.resource()
    tuned = AsyncTunedModel(MODEL, client=async_client)
    service.faults.plan = [("PUT", "after")]  # a lost reply: still exactly one deployment
    deployed = await tuned.deploy(
        resource, name="pets", credential=AsyncStaticToken(), retry=service.policy()
    )
    assert deployed.name == "pets"
    assert deployed.model_id == MODEL
    assert deployed._client is async_client
    assert service.count() == 1
    token = AsyncStaticToken()
    assert await deployed.undeploy(resource, credential=token, retry=service.policy())
    assert service.count() == 0


def test_without_the_extra_deploy_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "azure.core" or m.startswith("azure.core.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "azure.core", None)
    with pytest.raises(ImportError, match=r"finetune-kit\[azure\]"):
        TunedModel(MODEL).deploy(AzureResource("s", "r", "a"), credential=StaticToken())


def test_deploy_checks_the_resource() -> None:
    with pytest.raises(TypeError, match="AzureResource"):
        TunedModel(MODEL).deploy("my-resource")  # type: ignore[arg-type]


VERSION = "2025-04-01-preview"


def _azure() -> openai.AzureOpenAI:
    return openai.AzureOpenAI(api_key="k", api_version=VERSION, base_url=BASE_URL)


@pytest.mark.parametrize("aio", [False, True])
async def test_shutdown_date_falls_back_to_the_clients_endpoint(
    api: respx.Router, aio: bool
) -> None:
    api.get(f"/models/{MODEL}").mock(
        return_value=httpx.Response(
            200, json={"id": MODEL, "object": "model", "created": 0, "owned_by": "me"}
        )
    )
    date = facts_for("azure", MODEL).shutdown_date
    assert date is not None
    assert date != facts_for("openai", MODEL).shutdown_date
    if aio:
        async_client = openai.AsyncAzureOpenAI(api_key="k", api_version=VERSION, base_url=BASE_URL)
        found = await AsyncTunedModel(MODEL, client=async_client).shutdown_date()
    else:
        found = TunedModel(MODEL, client=_azure()).shutdown_date()
    assert found == date
    # A deployment's name says nothing: its base carries the facts.
    named = TunedModel("pets", client=_azure(), base_model=MODEL)
    api.get("/models/pets").mock(
        return_value=httpx.Response(
            200, json={"id": "pets", "object": "model", "created": 0, "owned_by": "me"}
        )
    )
    assert named.shutdown_date() == date
    # Another OpenAI-compatible server has no dates at all.
    other = openai.OpenAI(api_key="k", base_url=BASE_URL)
    assert TunedModel(MODEL, client=other).shutdown_date() is None


async def test_an_unknown_deploy_keyword_names_the_method(service: Service) -> None:
    # **options takes anything at run time: the method refuses what DeployKwargs lacks.
    model = TunedModel(MODEL)
    with pytest.raises(TypeError, match=r"^TunedModel\.deploy\(\) got an unexpected .*'size'"):
        _deploy(service, model, size=2)
    amodel = AsyncTunedModel(MODEL)
    with pytest.raises(TypeError, match=r"^AsyncTunedModel\.deploy\(\) got an unexpected"):
        await amodel.deploy(
            service.resource(),
            credential=AsyncStaticToken(),
            progress=False,
            capcity=2,  # type: ignore[call-arg]
        )

    assert service.faults.seen == []
