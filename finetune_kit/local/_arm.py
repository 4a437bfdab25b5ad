"""The Azure control plane's deployments API, as the local backend answers it.

On Azure a fine-tuned model answers only once it is *deployed*, through Azure Resource
Manager (ARM)::

    PUT|GET|DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/
                   Microsoft.CognitiveServices/accounts/{account}/deployments/{name}
    GET            .../deployments

This module keeps those deployments and serves them as Starlette routes, so the whole Azure
path (train, deploy, classify through the deployment, undeploy) runs offline. Like ARM, a PUT
creates or updates the one deployment of that name, provisioning takes a while (read from the
backend's clock, so tests move it), an unknown model or deployment type is refused, and a
request without ``api-version`` or a bearer token is refused. The data plane asks
:meth:`ArmDeployments.model_for` which model a deployment name serves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

__all__ = ["DEPLOYMENT_SKUS", "ArmDeployments", "arm_routes"]

#: Deployment types a fine-tuned model can be deployed as.
DEPLOYMENT_SKUS: Final = frozenset(
    {"Standard", "GlobalStandard", "DataZoneStandard", "Developer", "ProvisionedManaged"}
)
_PREFIX: Final = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices"
    "/accounts/{account}/deployments"
)


@dataclass
class _Deployment:
    name: str
    model: str
    sku: str
    capacity: int
    created_at: float
    resource_id: str


class ArmDeployments:
    """Deployments by (subscription, resource group, account, name), thread-safe.

    Args:
        clock: the backend's clock (seconds since the epoch).
        model_exists: whether the backend knows a model (a fine-tuned one, or a base).
        provisioning_seconds: how long a new deployment stays ``Creating``.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        model_exists: Callable[[str], bool],
        provisioning_seconds: float = 60.0,
    ) -> None:
        self._clock = clock
        self._model_exists = model_exists
        self._provisioning = provisioning_seconds
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str, str], _Deployment] = {}

    def _state(self, item: _Deployment) -> str:
        ready = self._clock() >= item.created_at + self._provisioning
        return "Succeeded" if ready else "Creating"

    def document(self, item: _Deployment) -> dict[str, Any]:
        """ARM's JSON for a deployment."""
        return {
            "id": item.resource_id,
            "type": "Microsoft.CognitiveServices/accounts/deployments",
            "name": item.name,
            "sku": {"name": item.sku, "capacity": item.capacity},
            "properties": {
                "model": {"format": "OpenAI", "name": item.model, "version": "1"},
                "provisioningState": self._state(item),
            },
        }

    def model_for(self, name: str) -> str | None:
        """The model a *ready* deployment called ``name`` serves (any account), or None."""
        with self._lock:
            for (_, _, _, dep_name), item in self._items.items():
                if dep_name == name and self._state(item) == "Succeeded":
                    return item.model
        return None

    def put(self, key: tuple[str, str, str, str], path: str, body: Any) -> tuple[int, Any]:
        """Create or update a deployment: (HTTP status, JSON)."""
        sku = body.get("sku") if isinstance(body, dict) else None
        props = body.get("properties") if isinstance(body, dict) else None
        model = props.get("model") if isinstance(props, dict) else None
        if not isinstance(sku, dict) or not isinstance(model, dict):
            return 400, _err("InvalidRequestContent", "sku and properties.model are required")
        sku_name, capacity = sku.get("name"), sku.get("capacity", 1)
        canonical = {s.lower(): s for s in DEPLOYMENT_SKUS}.get(str(sku_name).lower())
        if canonical is None:
            return 400, _err(
                "InvalidResourceProperties",
                f"The specified SKU '{sku_name}' is not supported; one of "
                f"{', '.join(sorted(DEPLOYMENT_SKUS))}",
            )
        if not isinstance(capacity, int) or capacity < 1:
            return 400, _err("InvalidCapacity", "sku.capacity must be a positive integer")
        if model.get("format") != "OpenAI" or not isinstance(model.get("name"), str):
            return 400, _err("InvalidModel", "properties.model needs format 'OpenAI' and a name")
        if not self._model_exists(model["name"]):
            return 400, _err(
                "DeploymentModelNotFound", f"The model '{model['name']}' was not found"
            )
        with self._lock:
            existing = self._items.get(key)
            if existing is not None and existing.model == model["name"]:
                existing.sku, existing.capacity = canonical, capacity
                return 200, self.document(existing)
            item = _Deployment(key[3], model["name"], canonical, capacity, self._clock(), path)
            self._items[key] = item
            return 201, self.document(item)

    def get(self, key: tuple[str, str, str, str]) -> dict[str, Any] | None:
        """One deployment's JSON, or None."""
        with self._lock:
            item = self._items.get(key)
            return None if item is None else self.document(item)

    def delete(self, key: tuple[str, str, str, str]) -> bool:
        """Remove a deployment: True when it existed."""
        with self._lock:
            return self._items.pop(key, None) is not None

    def list(self, account: tuple[str, str, str]) -> list[dict[str, Any]]:
        """The account's deployments."""
        with self._lock:
            return [self.document(i) for k, i in self._items.items() if k[:3] == account]


def _err(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _refused(request: Request) -> Response | None:
    if not request.query_params.get("api-version"):
        return JSONResponse(
            _err("MissingApiVersionParameter", "The api-version query parameter is required."),
            status_code=400,
        )
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        return JSONResponse(
            _err("AuthenticationFailed", "Authentication failed: no bearer token."),
            status_code=401,
        )
    return None


def arm_routes(deployments: ArmDeployments) -> list[Route]:
    """Starlette routes for the deployments API, over ``deployments``."""

    def key(request: Request) -> tuple[str, str, str, str]:
        p = request.path_params
        return (p["sub"], p["rg"].lower(), p["account"].lower(), p["name"])

    async def one(request: Request) -> Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        k = key(request)
        if request.method == "PUT":
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse(_err("InvalidRequestContent", "not JSON"), status_code=400)
            status, doc = deployments.put(k, request.url.path, body)
            return JSONResponse(doc, status_code=status)
        if request.method == "DELETE":
            return Response(status_code=200 if deployments.delete(k) else 204)
        doc = deployments.get(k)
        if doc is None:
            return JSONResponse(
                _err("DeploymentNotFound", f"Deployment '{k[3]}' not found."), status_code=404
            )
        return JSONResponse(doc)

    async def many(request: Request) -> Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        p = request.path_params
        account = (p["sub"], p["rg"].lower(), p["account"].lower())
        return JSONResponse({"value": deployments.list(account)})

    return [
        Route(_PREFIX + "/{name}", one, methods=["GET", "PUT", "DELETE"]),
        Route(_PREFIX, many, methods=["GET"]),
    ]
