"""Keyword groups that several entry points of this package share, declared once (checked
by :func:`finetune_kit._core.keywords.check_keywords`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from ._deployments import Deployment

__all__ = ["DeployKwargs", "ModelOrigin"]


class DeployKwargs(TypedDict, total=False):
    """How to deploy: the keywords every deploy method takes (``AzureDeployments.deploy``,
    ``TunedModel.deploy`` and their async siblings) as ``**options: Unpack[DeployKwargs]``.

    Attributes:
        name: the deployment name; default: derived from the model id
            (``deployment_name_for``).
        sku: the deployment type (``Standard``, ``GlobalStandard``, ``Developer``, ...);
            default ``Standard``.
        capacity: the SKU capacity; default 1.
        wait: wait until the deployment answers (``provisioningState`` Succeeded); default
            True.
    """

    name: str | None
    sku: str
    capacity: int
    wait: bool


class ModelOrigin(TypedDict, total=False):
    """Where a model came from, each part None when unknown: the keywords of the
    ``TunedModel`` and ``AsyncTunedModel`` constructors besides the name and the client, kept
    as one value on the handle.

    Attributes:
        job_id: the job that produced it.
        base_model: the model it was tuned from (it also tells classify() the token encoding
            when the name does not, e.g. for an Azure deployment).
        checkpoint_step: the step of the checkpoint this model is, when it is one.
        deployment: the Azure deployment the name is, when it is one.
    """

    job_id: str | None
    base_model: str | None
    checkpoint_step: int | None
    deployment: Deployment | None
