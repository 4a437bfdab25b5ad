"""Azure OpenAI deployments: on Azure a fine-tuned model answers only once it is deployed.

Deployments live in the Azure Resource Manager control plane, not in the data plane the
``openai`` client talks to::

    PUT    {management}/subscriptions/{sub}/resourceGroups/{rg}/providers/
           Microsoft.CognitiveServices/accounts/{account}/deployments/{name}?api-version=...
    GET    the same URL (provisioningState: Accepted/Creating -> Succeeded | Failed ...)
    DELETE the same URL

The requests go through azure-core's pipeline (``azure-identity`` credentials, the
``requests`` transport for sync and ``aiohttp`` for async: the Azure SDK's own stack) with its
retry policy left out, so the one retry layer in ``_core/retry.py`` decides, as it does for
every other call.

Exactly once: a deployment is named after the model it serves (or by the caller), and ARM's
PUT creates-or-updates *that name*, so a PUT retried after a lost reply lands on the same
deployment instead of making a second one. Before sending, the flow reads the name: an
existing deployment of the same model is reused as it is; one of another model is a conflict
that is reported, never overwritten. A DELETE retried after a lost reply finds the deployment
gone (404), which counts as done.

Deployments are written once, as flows (generators of :class:`Request`/:class:`Sleep`), and
run by :func:`run_flow` for :class:`AzureDeployments` and :func:`arun_flow` for
:class:`AsyncAzureDeployments`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, cast
from urllib.parse import quote

from .._core.client import Request, Sleep, arun_flow, run_flow
from .._core.keywords import check_keywords
from .._exceptions import DeploymentError
from ._keywords import DeployKwargs

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from typing_extensions import Unpack

    from .._core.client import Flow
    from .._core.retry import RetryPolicy

__all__ = [
    "AsyncAzureDeployments",
    "AzureDeployments",
    "AzureResource",
    "Deployment",
    "deployment_name_for",
]

#: ARM api-version for Microsoft.CognitiveServices deployments (GA, 2024-10-01).
DEFAULT_API_VERSION: Final = "2024-10-01"
MANAGEMENT_URL: Final = "https://management.azure.com"
_SCOPE: Final = "https://management.azure.com/.default"
_TERMINAL: Final = frozenset({"succeeded", "failed", "canceled", "disabled"})
#: Deployment names: letters, digits, '-', '_', '.'; at most 64 characters.
_NAME_OK: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EXTRA: Final = 'pip install "finetune-kit[azure]"'


def deployment_name_for(model: str) -> str:
    """The deployment name used when the caller gives none: the model id itself when Azure
    accepts it as a name (fine-tuned ids such as ``gpt-4.1-mini-2025-04-14.ft-b044...`` do),
    else a readable prefix plus a hash of the id, so the same model always maps to one name."""
    if _NAME_OK.match(model):
        return model
    digest = hashlib.sha256(model.encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-._")[:48] or "model"
    return f"{stem}-{digest}"


@dataclass(frozen=True)
class AzureResource:
    """Where deployments live: an Azure OpenAI (Foundry) resource in a resource group.

    Attributes:
        subscription_id: the Azure subscription id.
        resource_group: the resource group of the Azure OpenAI resource.
        account: the Azure OpenAI resource (Cognitive Services account) name.
        management_url: the ARM endpoint (another cloud, or the local backend in tests).
        api_version: the ARM api-version sent with each request.
    """

    subscription_id: str
    resource_group: str
    account: str
    management_url: str = MANAGEMENT_URL
    api_version: str = DEFAULT_API_VERSION

    def __post_init__(self) -> None:
        for field in ("subscription_id", "resource_group", "account", "management_url"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"AzureResource.{field} must be a non-empty string")

    def path(self, name: str | None = None) -> str:
        """The ARM path of the deployments collection, or of one deployment."""
        base = (
            f"/subscriptions/{quote(self.subscription_id, safe='')}"
            f"/resourceGroups/{quote(self.resource_group, safe='')}"
            "/providers/Microsoft.CognitiveServices"
            f"/accounts/{quote(self.account, safe='')}/deployments"
        )
        return base if name is None else f"{base}/{quote(name, safe='')}"


@dataclass(frozen=True)
class Deployment:
    """A deployment as ARM describes it.

    Attributes:
        name: the deployment name: pass it as ``model=`` to the data-plane client.
        model: the model it serves (a fine-tuned id such as ``gpt-4.1-...ft-...``).
        sku: the deployment type (``Standard``, ``GlobalStandard``, ``Developer``, ...).
        capacity: the SKU capacity.
        state: ARM's ``provisioningState`` (``Creating``, ``Succeeded``, ``Failed``, ...).
        created_at: when it was created (ARM's ``systemData.createdAt``), if ARM said.
        modified_at: when it was last changed (``systemData.lastModifiedAt``), if ARM said.
    """

    name: str
    model: str
    sku: str
    capacity: int | None
    state: str
    created_at: dt.datetime | None = None
    modified_at: dt.datetime | None = None

    @property
    def ready(self) -> bool:
        """True once the deployment answers requests."""
        return self.state.lower() == "succeeded"

    @classmethod
    def from_arm(cls, doc: Mapping[str, Any]) -> Deployment:
        """Read ARM's JSON for a deployment."""
        props = doc.get("properties") or {}
        model = props.get("model") or {}
        sku = doc.get("sku") or {}
        capacity = sku.get("capacity")
        system = doc.get("systemData") or {}
        return cls(
            name=str(doc.get("name", "")),
            model=str(model.get("name", "")),
            sku=str(sku.get("name", "")),
            capacity=int(capacity) if isinstance(capacity, int) else None,
            state=str(props.get("provisioningState", "")),
            created_at=_moment(system.get("createdAt")),
            modified_at=_moment(system.get("lastModifiedAt")),
        )


def _moment(value: object) -> dt.datetime | None:
    """An ARM timestamp (ISO 8601, often with 7 fractional digits and ``Z``), or None."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip().replace("Z", "+00:00"))
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _error(status: int | None, body: object, headers: Mapping[str, str], what: str) -> Exception:
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code")) if isinstance(err, dict) and err.get("code") else None
    message = str(err.get("message")) if isinstance(err, dict) and err.get("message") else ""
    return DeploymentError(
        f"{what}: HTTP {status}{f' {code}' if code else ''}: {message or 'no details'}"
        + _hint(status, code),
        status_code=status,
        code=code,
        headers=dict(headers),
    )


def _hint(status: int | None, code: str | None) -> str:
    text = (code or "").lower()
    if status == 403 or "authorization" in text or "forbidden" in text:
        return (
            "\nThe credential may not deploy: it needs a role with "
            "Microsoft.CognitiveServices/accounts/deployments/write on the resource."
        )
    if "quota" in text or "capacity" in text:
        return "\nThe resource's quota for this deployment type is used up: free or raise it."
    if "region" in text or "location" in text or "notsupported" in text:
        return "\nThis deployment type or model is not offered in the resource's region."
    return ""


def _pipeline(resource: AzureResource, credential: object | None, *, aio: bool) -> Any:
    """azure-core's pipeline for ARM: credentials, headers, JSON; no retry policy of its own."""
    try:
        from azure.core import AsyncPipelineClient, PipelineClient
        from azure.core.pipeline import policies
    except ImportError as exc:
        raise ImportError(f"Azure deployments need the azure extra: {_EXTRA}") from exc
    if credential is None:
        credential = _default_credential(aio=aio)
    auth = (
        policies.AsyncBearerTokenCredentialPolicy if aio else policies.BearerTokenCredentialPolicy
    )
    chain = [
        policies.HeadersPolicy(),
        policies.UserAgentPolicy(sdk_moniker="finetune-kit"),
        auth(cast("Any", credential), _SCOPE),
        policies.ContentDecodePolicy(),
    ]
    factory = AsyncPipelineClient if aio else PipelineClient
    return factory(resource.management_url, policies=chain)


class _Arm:
    """The sync ARM transport: azure-core's pipeline (``requests``), our retries."""

    def __init__(self, resource: AzureResource, credential: object | None) -> None:
        self.resource = resource
        self._client = _pipeline(resource, credential, aio=False)

    def call(self, method: str, path: str, body: object | None = None) -> Deployment | None:
        request, https = _http_request(self._client, self.resource, method, path, body)
        try:
            response = self._client.send_request(request, enforce_https=https)
        except Exception as exc:
            raise _transport_error(method, path, exc) from exc
        return _read(method, path, response.status_code, response.text(), response.headers)

    def close(self) -> None:
        self._client.close()


class _AsyncArm:
    """The async sibling of :class:`_Arm` (azure-core's async pipeline, ``aiohttp``)."""

    def __init__(self, resource: AzureResource, credential: object | None) -> None:
        self.resource = resource
        self._client = _pipeline(resource, credential, aio=True)

    async def call(self, method: str, path: str, body: object | None = None) -> Deployment | None:
        request, https = _http_request(self._client, self.resource, method, path, body)
        try:
            response = await self._client.send_request(request, enforce_https=https)
        except Exception as exc:
            raise _transport_error(method, path, exc) from exc
        return _read(method, path, response.status_code, response.text(), response.headers)

    async def close(self) -> None:
        await self._client.close()


ArmT = TypeVar("ArmT", _Arm, _AsyncArm)


def _http_request(
    client: Any, resource: AzureResource, method: str, path: str, body: object | None
) -> tuple[Any, bool]:
    from azure.core.rest import HttpRequest

    url = client.format_url(path)
    params = {"api-version": resource.api_version}
    # Bearer tokens go over https only, except to a loopback test service.
    return HttpRequest(method, url, params=params, json=body), url.startswith("https:")


def _transport_error(method: str, path: str, exc: Exception) -> Exception:
    from azure.core.exceptions import AzureError, ServiceRequestError

    if not isinstance(exc, AzureError):
        return exc
    # The pipeline has no error map, so every status comes back as a response: an AzureError
    # here is the transport's. Only ServiceRequestError says the request never went out; any
    # other (ServiceResponseError, or the HttpResponseError of a reply that ended half-way)
    # may follow a request the service acted on.
    return DeploymentError(
        f"{method} {path}: {type(exc).__name__}: {exc}",
        None,
        ambiguous=not isinstance(exc, ServiceRequestError),
    )


def _default_credential(*, aio: bool) -> object:
    try:
        if aio:
            from azure.identity.aio import DefaultAzureCredential as AsyncCredential

            return AsyncCredential()
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    except ImportError as exc:
        raise ImportError(f"Azure credentials need the azure extra: {_EXTRA}") from exc


def _read(
    method: str, path: str, status: int, text: str, headers: Mapping[str, str]
) -> Deployment | None:
    import json

    try:
        body: object = json.loads(text) if text else None
    except ValueError:
        body = None
    if status == 404 and method in {"GET", "DELETE"}:
        return None  # not there (GET), or already gone (a retried DELETE)
    if status >= 400:
        raise _error(status, body, headers, f"{method} deployment {path.rsplit('/', 1)[-1]}")
    if method == "DELETE" or not isinstance(body, dict):
        return None
    return Deployment.from_arm(body)


# --- flows: written once, run on either transport -------------------------------------------


class _ArmLike(Protocol):
    def call(self, method: str, path: str, body: object | None = None) -> object: ...


def _arm(description: str, method: str, path: str, body: object | None = None) -> Request:
    """One control-plane request as data; the flow runner performs it on either transport."""
    return Request(description, lambda arm: cast("_ArmLike", arm).call(method, path, body))


def _get(path: str) -> Request:
    return _arm(f"get deployment {path.rsplit('/', 1)[-1]}", "GET", path)


def deploy_flow(
    resource: AzureResource,
    model: str,
    *,
    name: str,
    sku: str,
    capacity: int,
    wait: bool,
    timeout: float,
    poll_interval: float,
    clock: Callable[[], float],
    on_state: Callable[[Deployment], None] | None = None,
) -> Flow[Deployment]:
    """Deploy ``model`` as ``name`` (reusing a deployment of it), optionally until it is ready."""
    path = resource.path(name)
    current = yield _get(path)
    if isinstance(current, Deployment) and current.model != model:
        raise DeploymentError(
            f"deployment {name!r} already serves {current.model!r}, not {model!r}: pick "
            "another name= or undeploy it first",
            status_code=409,
            code="DeploymentNameInUse",
        )
    if current is None:
        body = {
            "sku": {"name": sku, "capacity": capacity},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}},
        }
        # PUT is create-or-update of this one name: a retry after a lost reply cannot make a
        # second deployment, so the plain retried request is exactly-once already.
        current = yield _arm(f"deploy {model} as {name}", "PUT", path, body)
    deployment = cast("Deployment", current)
    if on_state is not None:
        on_state(deployment)
    started = clock()
    while wait and deployment.state.lower() not in _TERMINAL:
        if clock() - started >= timeout:
            raise DeploymentError(
                f"deployment {name!r} still {deployment.state} after {timeout:.0f}s; it keeps "
                "provisioning: wait again later",
                status_code=None,
                code="Timeout",
            )
        yield Sleep(poll_interval)
        found = yield _get(path)
        if found is None:
            raise DeploymentError(f"deployment {name!r} disappeared while provisioning", None)
        deployment = cast("Deployment", found)
        if on_state is not None:
            on_state(deployment)
    if wait and not deployment.ready:
        raise DeploymentError(
            f"deployment {name!r} of {model} ended {deployment.state}", None, code="Failed"
        )
    return deployment


def undeploy_flow(
    resource: AzureResource, name: str, *, timeout: float, poll_interval: float, clock: Any
) -> Flow[bool]:
    """Delete deployment ``name``: True when it existed, False when it was already gone."""
    path = resource.path(name)
    existing = yield _get(path)
    if existing is None:
        return False
    yield _arm(f"undeploy {name}", "DELETE", path)
    started = clock()
    while (yield _get(path)) is not None:  # ARM may answer 202 and delete in the background
        if clock() - started >= timeout:
            raise DeploymentError(f"deployment {name!r} is still being deleted", None)
        yield Sleep(poll_interval)
    return True


# --- shells -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    timeout: float
    poll_interval: float
    retry: RetryPolicy | None

    def __post_init__(self) -> None:
        if not isinstance(self.timeout, (int, float)) or not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if not isinstance(self.poll_interval, (int, float)) or not self.poll_interval > 0:
            raise ValueError(
                f"poll_interval must be a positive number of seconds, not {self.poll_interval!r}"
            )

    def clock(self) -> Callable[[], float]:
        return (self.retry.clock if self.retry else None) or time.monotonic


def _check_model(model: object, sku: object, capacity: object) -> None:
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"model must be the fine-tuned model id (a string), not {model!r}")
    if not isinstance(sku, str) or not sku:
        raise TypeError(f"sku must be a deployment type such as 'Standard', not {sku!r}")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive integer, not {capacity!r}")


class _Deployments(Generic[ArmT]):
    """What both shells share: arguments checked once, flows built once."""

    _transport: type[ArmT]

    def __init__(
        self,
        resource: AzureResource,
        *,
        credential: object | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 1800.0,
        poll_interval: float = 10.0,
    ) -> None:
        if not isinstance(resource, AzureResource):
            raise TypeError(f"resource must be an AzureResource, not {type(resource).__name__}")
        self.resource = resource
        self._options = _Options(timeout, poll_interval, retry)
        self._arm: ArmT = self._transport(resource, credential)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.resource.account!r})"

    def _deploy(
        self,
        model: str,
        options: DeployKwargs,
        where: str,
        on_state: Callable[[Deployment], None] | None = None,
    ) -> Flow[Deployment]:
        check_keywords(where, options, DeployKwargs.__annotations__)
        sku, capacity = options.get("sku", "Standard"), options.get("capacity", 1)
        _check_model(model, sku, capacity)
        o = self._options
        return deploy_flow(
            self.resource,
            model,
            name=options.get("name") or deployment_name_for(model),
            sku=sku,
            capacity=capacity,
            wait=options.get("wait", True),
            timeout=o.timeout,
            poll_interval=o.poll_interval,
            clock=o.clock(),
            on_state=on_state,
        )

    def _undeploy(self, name: str) -> Flow[bool]:
        o = self._options
        return undeploy_flow(
            self.resource, name, timeout=o.timeout, poll_interval=o.poll_interval, clock=o.clock()
        )

    def _get(self, name: str) -> Flow[object]:
        return _one(_get(self.resource.path(name)))


class AzureDeployments(_Deployments[_Arm]):
    """Deploy and undeploy fine-tuned models on an Azure OpenAI resource.

    Args:
        resource: the Azure OpenAI resource (subscription, resource group, account).
        credential: an ``azure-identity`` credential; ``DefaultAzureCredential()`` when omitted.
        retry: the retry policy for control-plane requests (and its clock and sleep).
        timeout: how long :meth:`deploy` waits for provisioning, in seconds.
        poll_interval: seconds between provisioning checks.
    """

    _transport = _Arm

    def _run(self, flow: Flow[Any]) -> Any:
        return run_flow(flow, cast("Any", self._arm), self._options.retry)

    def deploy(
        self,
        model: str,
        *,
        on_state: Callable[[Deployment], None] | None = None,
        **options: Unpack[DeployKwargs],
    ) -> Deployment:
        """Deploy ``model`` (idempotent: an existing deployment of it is reused).

        Fine-tuned deployments are billed per hour while they exist, called or not; Azure
        deletes one left without calls for 15 days (the model stays, and can be redeployed).

        Args:
            model: the fine-tuned model id.
            on_state: called with the deployment as first seen and after each poll.
            **options: ``name``, the deployment name (default: derived from ``model``);
                ``sku``, the deployment type (``Standard`` by default, ``GlobalStandard``,
                ``Developer``, ...); ``capacity``, the SKU capacity (default 1); ``wait``,
                wait until ``provisioningState`` is Succeeded (default True).

        Raises:
            TypeError: an unknown keyword, a model or sku that is not a string.
            ValueError: a capacity below 1.
            DeploymentError: ARM refused or the deployment failed.
        """
        flow = self._deploy(model, options, "AzureDeployments.deploy()", on_state)
        return cast("Deployment", self._run(flow))

    def get(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or None."""
        return cast("Deployment | None", self._run(self._get(name)))

    def undeploy(self, name: str) -> bool:
        """Delete a deployment: True when it existed, False when it was already gone."""
        return cast("bool", self._run(self._undeploy(name)))

    def close(self) -> None:
        """Close the underlying HTTP session."""
        self._arm.close()


class AsyncAzureDeployments(_Deployments[_AsyncArm]):
    """The async sibling of :class:`AzureDeployments` (same arguments, same guarantees)."""

    _transport = _AsyncArm

    async def _run(self, flow: Flow[Any]) -> Any:
        return await arun_flow(flow, cast("Any", self._arm), self._options.retry)

    async def deploy(
        self,
        model: str,
        *,
        on_state: Callable[[Deployment], None] | None = None,
        **options: Unpack[DeployKwargs],
    ) -> Deployment:
        """See :meth:`AzureDeployments.deploy`."""
        flow = self._deploy(model, options, "AsyncAzureDeployments.deploy()", on_state)
        return cast("Deployment", await self._run(flow))

    async def get(self, name: str) -> Deployment | None:
        """See :meth:`AzureDeployments.get`."""
        return cast("Deployment | None", await self._run(self._get(name)))

    async def undeploy(self, name: str) -> bool:
        """See :meth:`AzureDeployments.undeploy`."""
        return cast("bool", await self._run(self._undeploy(name)))

    async def close(self) -> None:
        """Close the underlying HTTP session."""
        await self._arm.close()


def _one(request: Request) -> Flow[object]:
    return (yield request)
