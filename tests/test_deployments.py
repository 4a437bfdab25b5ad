"""Azure deployments: idempotent deploy/undeploy over a real ARM-shaped service on loopback."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("azure.core")
pytest.importorskip("aiohttp")
pytest.importorskip("uvicorn")

from finetune_kit import DeploymentError, RetryPolicy
from finetune_kit._core.client import run_flow
from finetune_kit.models._deployments import (
    AsyncAzureDeployments,
    AzureDeployments,
    AzureResource,
    Deployment,
    deploy_flow,
    deployment_name_for,
)

from .arm_service import MODEL, AsyncStaticToken, Service, StaticToken, serve

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from tests.conftest import FreshImport


@pytest.fixture(scope="module")
def _server() -> Iterator[Service]:
    with serve() as service:
        yield service


@pytest.fixture
def service(_server: Service) -> Service:
    return _server.reset()


def _sync(service: Service) -> AzureDeployments:
    return AzureDeployments(
        service.resource(), credential=StaticToken(), retry=service.policy(), poll_interval=5
    )


def test_deploy_waits_for_provisioning_then_reuses(service: Service) -> None:
    deployments = _sync(service)
    dep = deployments.deploy(MODEL)
    assert dep == Deployment(MODEL, MODEL, "Standard", 1, "Succeeded")
    assert dep.ready
    # Provisioning took the service's 30 s, measured on the clock the polling slept on.
    assert service.faults.seen == ["GET", "PUT"] + ["GET"] * 6
    again = deployments.deploy(MODEL)
    assert again == dep
    assert service.faults.seen[-1] == "GET"  # found and reused: no second PUT
    assert service.count() == 1


@pytest.mark.parametrize("when", ["before", "after"])
def test_deploy_is_exactly_once_under_failures(service: Service, when: str) -> None:
    service.faults.plan = [("PUT", when)]
    dep = _sync(service).deploy(MODEL, name="classifier", sku="GlobalStandard", wait=False)
    assert dep.name == "classifier"
    assert dep.sku == "GlobalStandard"
    assert service.count() == 1
    assert service.faults.seen.count("PUT") == 2  # the retried PUT landed on the same name


def test_deploy_refuses_a_name_serving_another_model(service: Service) -> None:
    _sync(service).deploy(MODEL, name="shared", wait=False)
    with pytest.raises(DeploymentError, match="already serves") as info:
        _sync(service).deploy("gpt-4o-mini-2024-07-18.ft-other", name="shared")
    assert info.value.status_code == 409
    assert service.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "llama-unknown"}, "DeploymentModelNotFound"),
        ({"model": MODEL, "sku": "Premium"}, "InvalidResourceProperties"),
    ],
)
def test_refusals_are_clear_and_not_retried(
    service: Service, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(DeploymentError, match=match) as info:
        _sync(service).deploy(**kwargs)
    assert info.value.status_code == 400
    assert service.faults.seen.count("PUT") == 1


def test_undeploy_is_exactly_once_under_a_lost_reply(service: Service) -> None:
    deployments = _sync(service)
    deployments.deploy(MODEL, wait=False)
    service.faults.plan = [("DELETE", "after")]
    assert deployments.undeploy(MODEL) is True
    assert service.count() == 0
    assert deployments.undeploy(MODEL) is False  # already gone
    assert deployments.get(MODEL) is None


def test_timeout_reads_the_clock(service: Service) -> None:
    deployments = AzureDeployments(
        service.resource(),
        credential=StaticToken(),
        retry=service.policy(),
        poll_interval=4,
        timeout=10,
    )
    with pytest.raises(DeploymentError, match="still Creating after 10s"):
        deployments.deploy(MODEL)
    assert service.count() == 1  # it keeps provisioning; waiting again later finds it


def test_data_plane_sees_a_deployment_only_when_ready(service: Service) -> None:
    _sync(service).deploy(MODEL, name="live", wait=False)
    assert service.arm.model_for("live") is None
    service.clock.advance(30)
    assert service.arm.model_for("live") == MODEL


async def test_async_twin_has_the_same_guarantees(service: Service) -> None:
    deployments = AsyncAzureDeployments(
        service.resource(), credential=AsyncStaticToken(), retry=service.policy(), poll_interval=5
    )
    try:
        service.faults.plan = [("PUT", "after")]
        dep = await deployments.deploy(MODEL)
        assert dep.ready
        assert service.count() == 1
        assert await deployments.undeploy(dep.name) is True
        assert await deployments.get(dep.name) is None
    finally:
        await deployments.close()


def test_control_plane_requires_a_token_and_api_version(service: Service) -> None:
    import httpx

    url = f"http://127.0.0.1:{service.port}{service.resource().path('x')}"
    assert httpx.get(url, headers={"Authorization": "Bearer t"}).status_code == 400
    assert httpx.get(url, params={"api-version": "2024-10-01"}).status_code == 401


def test_deployment_names() -> None:
    assert deployment_name_for(MODEL) == MODEL
    odd = deployment_name_for("ft:gpt-4o-mini-2024-07-18:org:demo:abc123")
    assert len(odd) <= 64
    assert odd == deployment_name_for("ft:gpt-4o-mini-2024-07-18:org:demo:abc123")
    assert ":" not in odd


def test_a_lost_reply_without_any_reply_is_retried_by_the_flow() -> None:
    # A connection dropped after the service acted (no HTTP status at all): the flow's PUT is
    # retried and lands on the same name.
    state: dict[str, Any] = {}
    calls: list[str] = []

    class Arm:
        def call(self, method: str, path: str, _body: object | None = None) -> object:
            calls.append(method)
            if method == "GET":
                return state.get(path)
            state[path] = Deployment("n", MODEL, "Standard", 1, "Succeeded")
            if calls.count("PUT") == 1:
                raise DeploymentError("dropped", None, ambiguous=True)
            return state[path]

    resource = AzureResource("s", "r", "a")
    flow = deploy_flow(
        resource,
        MODEL,
        name="n",
        sku="Standard",
        capacity=1,
        wait=True,
        timeout=60,
        poll_interval=1,
        clock=lambda: 0.0,
    )
    slept: list[float] = []
    dep = run_flow(flow, Arm(), RetryPolicy(sleep=slept.append, jitter=0))  # type: ignore[arg-type]
    assert dep.ready
    assert calls == ["GET", "PUT", "PUT"]
    assert len(slept) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"model": None}, TypeError),
        ({"model": MODEL, "capacity": 0}, ValueError),
        ({"model": MODEL, "sku": ""}, TypeError),
    ],
)
def test_arguments_are_checked_at_the_call(
    service: Service, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _sync(service).deploy(**kwargs)
    assert service.faults.seen == []


async def test_an_unknown_keyword_names_the_method(service: Service) -> None:
    with pytest.raises(
        TypeError, match=r"^AzureDeployments\.deploy\(\) got an unexpected .*'size'"
    ):
        _sync(service).deploy(MODEL, size=2)  # type: ignore[call-arg]
    deployments = AsyncAzureDeployments(service.resource(), credential=AsyncStaticToken())
    try:
        with pytest.raises(TypeError, match=r"^AsyncAzureDeployments\.deploy\(\) got an"):
            await deployments.deploy(MODEL, wiat=False)  # type: ignore[call-arg]
    finally:
        await deployments.close()

    assert service.faults.seen == []


def _unused(_: Callable[[], Awaitable[None]]) -> None:  # keeps the imported names honest
    return None


def test_without_the_extra_the_call_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in [m for m in sys.modules if m == "azure.core" or m.startswith("azure.core.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "azure.core", None)
    with pytest.raises(ImportError, match=r"finetune-kit\[azure\]"):
        AzureDeployments(AzureResource("s", "r", "a"), credential=StaticToken())


def test_import_does_not_load_azure(fresh_import: FreshImport) -> None:
    assert not [m for m in fresh_import.modules if m.startswith("azure")]


def test_system_data_is_read_from_arm() -> None:
    doc = {
        "name": "d",
        "properties": {"model": {"name": MODEL}, "provisioningState": "Succeeded"},
        "systemData": {
            "createdAt": "2026-11-01T08:00:00.1234567Z",
            "lastModifiedAt": "2026-11-02T09:30:00+00:00",
        },
    }
    dep = Deployment.from_arm(doc)
    assert dep.created_at == dt.datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=dt.timezone.utc)
    assert dep.modified_at == dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone.utc)
    odd = Deployment.from_arm({"systemData": {"createdAt": "yesterday", "lastModifiedAt": 5}})
    assert odd.created_at is None
    assert odd.modified_at is None


def test_on_state_sees_each_provisioning_state(service: Service) -> None:
    states: list[str] = []
    _sync(service).deploy(MODEL, on_state=lambda d: states.append(d.state))
    assert states == ["Creating"] * 6 + ["Succeeded"]


@pytest.mark.parametrize(("code", "puts"), [("InsufficientQuota", 1), ("Conflict", 2)])
def test_a_quota_refusal_is_not_retried_but_a_conflict_is(
    service: Service, code: str, puts: int
) -> None:
    service.faults.refusals = [("PUT", 409, code)]
    deployments = _sync(service)
    if puts == 1:
        with pytest.raises(DeploymentError, match="quota"):
            deployments.deploy(MODEL, wait=False)
    else:
        assert deployments.deploy(MODEL, wait=False).model == MODEL
    assert service.faults.seen.count("PUT") == puts


def test_transport_failures_say_whether_the_request_may_have_acted() -> None:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    from finetune_kit.models._deployments import _transport_error

    ended = _transport_error("PUT", "/d", HttpResponseError("Response ended prematurely"))
    assert isinstance(ended, DeploymentError)
    assert ended.ambiguous  # the reply broke off: the PUT may have been applied
    unsent = _transport_error("PUT", "/d", ServiceRequestError("connection refused"))
    assert isinstance(unsent, DeploymentError)
    assert not unsent.ambiguous
    other = ValueError("not a transport error")
    assert _transport_error("PUT", "/d", other) is other
