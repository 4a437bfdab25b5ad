"""``TunedModel.deploy`` / ``undeploy``: on Azure, deploying is part of the pipeline.

A fine-tuned model on Azure answers only through a deployment, which lives in the Azure
Resource Manager control plane (:mod:`._deployments`), not in the data plane the ``openai``
client talks to. These mixins give :class:`~finetune_kit.TunedModel` and its async sibling
the two steps, so a user goes from a job's result to classifying through a deployment without
leaving the library::

    deployed = job.result().deploy(resource)  # waits for provisioning, shows progress
    deployed.classify("...", labels=[...])  # model=<deployment name>
    deployed.undeploy(resource)  # stops the hourly hosting charge

The handle ``deploy`` returns is bound to the same data-plane client, with ``name`` set to
the deployment name (what Azure's data plane takes as ``model=``) and ``model_id`` still the
fine-tuned id. They live here rather than in ``_tuned_model.py`` to keep that module small.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from typing import TYPE_CHECKING, Any, cast

from .._core.clock import SYSTEM_CLOCK
from .._core.progress import progress_bar
from .._core.session import default_session
from .._exceptions import DeploymentError
from ..facts._tokens import FinetuneKitWarning
from ._deployments import (
    AsyncAzureDeployments,
    AzureDeployments,
    AzureResource,
    Deployment,
    deployment_name_for,
)
from ._hosting import estimate_hosting_cost, idle_warning

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Self, Unpack

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ._deployments import _Deployments
    from ._keywords import DeployKwargs

__all__ = ["AsyncDeployMixin", "DeployMixin"]

logger = logging.getLogger("finetune_kit")


class _Deployable:
    """What both mixins share: the names involved, the progress bar, the checks after."""

    name: str
    deployment: Deployment | None

    # Provided by the handle classes these mixins are combined with (TunedModel and its
    # async twin); declared here, without bodies, only so the mixins type-check.
    if TYPE_CHECKING:

        @property
        def model_id(self) -> str: ...

        def _deployed(self, deployment: Deployment) -> Self: ...

    def _target(self, name: str | None) -> str:
        if name is not None:
            return name
        if self.deployment is not None:
            return self.deployment.name
        return deployment_name_for(self.model_id)

    def _check_serves(self, found: Deployment) -> None:
        # Undeploying by a default or given name must never delete another model's deployment.
        if found.model != self.model_id:
            raise DeploymentError(
                f"deployment {found.name!r} serves {found.model!r}, not {self.model_id!r}: "
                "not deleted",
                status_code=409,
                code="DeploymentServesAnotherModel",
            )

    def _finished(self, deployment: Deployment) -> Self:
        cost = estimate_hosting_cost(self.model_id, sku=deployment.sku)
        logger.info(
            "deployment %s of %s is %s%s",
            deployment.name,
            deployment.model,
            deployment.state,
            f"; {cost}" if cost else "",
        )
        clock = default_session().clock or SYSTEM_CLOCK
        now = dt.datetime.fromtimestamp(clock(), tz=dt.timezone.utc)
        message = idle_warning(deployment, now=now)
        if message is not None:  # a reused deployment, unchanged for nearly 15 days
            warnings.warn(message, FinetuneKitWarning, stacklevel=3)
        return self._deployed(deployment)

    # The two steps, written once as flows (each mixin runs them on its own shell).

    def _deploying(
        self, deployments: _Deployments[Any], progress: bool, options: DeployKwargs
    ) -> Flow[Self]:
        target = self._target(options.get("name"))
        bar, on_state = _bar(progress, target)
        where = f"{type(self).__name__}.deploy()"
        with bar:
            found = yield from deployments._deploy(
                self.model_id, {**options, "name": target}, where, on_state
            )
        return self._finished(found)

    def _undeploying(self, deployments: _Deployments[Any], name: str | None) -> Flow[bool]:
        target = self._target(name)
        found = yield from deployments._get(target)
        if found is None:
            return False
        self._check_serves(cast("Deployment", found))
        return (yield from deployments._undeploy(target))


def _bar(enabled: bool, name: str) -> tuple[Any, Callable[[Deployment], None]]:
    bar = progress_bar(total=None, enabled=enabled, description=f"deploying {name}", unit="check")

    def on_state(deployment: Deployment) -> None:
        bar.set_postfix_str(deployment.state, refresh=False)
        bar.update(1)

    return bar, on_state


def _check_resource(resource: object) -> None:
    if not isinstance(resource, AzureResource):
        raise TypeError(
            "resource must be an AzureResource(subscription_id, resource_group, account), "
            f"not {type(resource).__name__}"
        )


class DeployMixin(_Deployable):
    """:meth:`deploy` and :meth:`undeploy` for :class:`~finetune_kit.TunedModel`."""

    def deploy(
        self,
        resource: AzureResource,
        *,
        credential: object | None = None,
        progress: bool = True,
        retry: RetryPolicy | None = None,
        **options: Unpack[DeployKwargs],
    ) -> Self:
        """Deploy this model on an Azure OpenAI resource and return a handle that uses it.

        Idempotent: a deployment of this model under the name is reused as it is (a name
        serving another model is refused, never overwritten), and a retried request cannot
        create a second one. Azure bills a deployment per hour while it exists, called or not
        (:func:`~finetune_kit.estimate_hosting_cost`), and deletes one left without calls for
        15 days; reusing one unchanged for 13 days or more warns.

        Args:
            resource: the Azure OpenAI resource to deploy on.
            credential: an ``azure-identity`` credential (``DefaultAzureCredential()`` when
                omitted; needs the ``azure`` extra).
            progress: show provisioning progress.
            retry: how control-plane requests are retried (its clock and sleep time the
                polling).
            **options: ``name`` (default: derived from the model id), ``sku`` (default
                ``Standard``), ``capacity`` (default 1) and ``wait`` (wait until the
                deployment answers; default True), as for
                :meth:`~finetune_kit.AzureDeployments.deploy`.

        Returns:
            A handle on the same data-plane client whose ``name`` is the deployment name
            (``.model_id`` keeps the fine-tuned id, ``.deployment`` what ARM reported).

        Raises:
            TypeError: an unknown keyword, or an argument of the wrong type.
            DeploymentError: ARM refused (permissions, quota, region, name in use) or the
                deployment failed or did not finish in time.
            ImportError: the ``azure`` extra is not installed.
        """
        _check_resource(resource)
        deployments = AzureDeployments(resource, credential=credential, retry=retry)
        try:
            return cast("Self", deployments._run(self._deploying(deployments, progress, options)))
        finally:
            deployments.close()

    def undeploy(
        self,
        resource: AzureResource,
        *,
        name: str | None = None,
        credential: object | None = None,
        retry: RetryPolicy | None = None,
    ) -> bool:
        """Delete this model's deployment, which stops its hosting charge (the model stays).

        Args:
            resource: the Azure OpenAI resource it is deployed on.
            name: the deployment name; default: this handle's deployment, else the name
                :meth:`deploy` derives from the model id.
            credential: an ``azure-identity`` credential (default as in :meth:`deploy`).
            retry: how control-plane requests are retried.

        Returns:
            True when a deployment was deleted, False when there was none.

        Raises:
            DeploymentError: the name serves another model (nothing is deleted), or ARM
                refused.
        """
        _check_resource(resource)
        deployments = AzureDeployments(resource, credential=credential, retry=retry)
        try:
            return cast("bool", deployments._run(self._undeploying(deployments, name)))
        finally:
            deployments.close()


class AsyncDeployMixin(_Deployable):
    """The async sibling of :class:`DeployMixin`, for :class:`~finetune_kit.AsyncTunedModel`."""

    async def deploy(
        self,
        resource: AzureResource,
        *,
        credential: object | None = None,
        progress: bool = True,
        retry: RetryPolicy | None = None,
        **options: Unpack[DeployKwargs],
    ) -> Self:
        """See :meth:`TunedModel.deploy <DeployMixin.deploy>`."""
        _check_resource(resource)
        deployments = AsyncAzureDeployments(resource, credential=credential, retry=retry)
        try:
            flow = self._deploying(deployments, progress, options)
            return cast("Self", await deployments._run(flow))
        finally:
            await deployments.close()

    async def undeploy(
        self,
        resource: AzureResource,
        *,
        name: str | None = None,
        credential: object | None = None,
        retry: RetryPolicy | None = None,
    ) -> bool:
        """See :meth:`TunedModel.undeploy <DeployMixin.undeploy>`."""
        _check_resource(resource)
        deployments = AsyncAzureDeployments(resource, credential=credential, retry=retry)
        try:
            return cast("bool", await deployments._run(self._undeploying(deployments, name)))
        finally:
            await deployments.close()
