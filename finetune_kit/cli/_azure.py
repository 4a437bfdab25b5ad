"""`finetune-kit` commands for Azure OpenAI deployments (see ``_main.py`` for the conventions).

- ``deploy MODEL --subscription S --resource-group G --account A [--name N] [--sku SKU]
  [--capacity N] [--no-wait] [--no-progress] [--yes]``: shows what hosting the model costs
  per hour, day and month (and Azure's 15-day idle rule), asks before creating a deployment
  billed by the hour (refuses without ``--yes`` when stdin is not a terminal), deploys
  (reusing a deployment of the model) and waits for it to answer.
- ``undeploy NAME --subscription S --resource-group G --account A``: deletes a deployment,
  which stops its hosting charge (the model stays).

Credentials come from ``azure-identity``'s ``DefaultAzureCredential`` (``az login``, a managed
identity, ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET``...); the commands
need the ``azure`` extra.

Exit codes: 0 success (also: nothing to undeploy); 1 ARM refused (permission, quota, region,
name in use), the deployment failed, or the user declined; 2 usage error, no confirmation
possible, the ``azure`` extra missing; 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .._exceptions import DeploymentError
from ..models._deployments import AzureDeployments, AzureResource, deployment_name_for
from ..models._hosting import IDLE_DELETION_DAYS, estimate_hosting_cost
from ..models._tuned_model import TunedModel
from ._common import caught_warnings, confirmed, fail, show_warnings

if TYPE_CHECKING:
    import argparse

__all__ = ["run_deploy", "run_undeploy"]


def _resource(args: argparse.Namespace) -> AzureResource:
    return AzureResource(
        args.subscription, args.resource_group, args.account, management_url=args.management_url
    )


def _refusal(command: str, exc: Exception) -> int | None:
    """The exit code for an error a user can act on, after saying what it is; else None."""
    if isinstance(exc, DeploymentError):
        return fail(command, exc)
    if isinstance(exc, ImportError):
        return fail(command, exc, 2)
    if isinstance(exc, (TypeError, ValueError)):
        return fail(command, exc, 2)
    if type(exc).__name__ == "ClientAuthenticationError":  # azure-core: no usable credential
        return fail(command, f"Azure sign-in failed (try `az login`): {exc}")
    return None


def run_deploy(args: argparse.Namespace) -> int:
    """``finetune-kit deploy``: show the hosting cost, ask, deploy, wait."""
    name = args.name or deployment_name_for(args.model)
    try:
        resource = _resource(args)
    except ValueError as exc:
        return fail("deploy", exc, 2)
    cost = estimate_hosting_cost(args.model, sku=args.sku)
    if cost is not None:
        sys.stdout.write(f"{cost}\n")
    else:
        sys.stdout.write(
            f"hosting {args.model}: price unknown; Azure bills a fine-tuned deployment per hour "
            f"while it exists and deletes one left without calls for {IDLE_DELETION_DAYS} days\n"
        )
    sys.stdout.flush()
    if not args.yes:
        refused = confirmed(
            "deploy",
            f"Deploy {args.model} as {name!r} on {args.account} (billed per hour)?",
            charge="a deployment billed by the hour",
            go_ahead="deploy",
            declined="not deployed",
        )
        if refused is not None:
            return refused
    try:
        with caught_warnings() as caught:
            deployed = TunedModel(args.model).deploy(
                resource,
                name=name,
                sku=args.sku,
                capacity=args.capacity,
                wait=not args.no_wait,
                progress=not args.no_progress,
            )
    except Exception as exc:
        code = _refusal("deploy", exc)
        if code is None:
            raise
        return code
    show_warnings(caught)
    state = deployed.deployment.state if deployed.deployment else "unknown"
    sys.stdout.write(
        f"deployment {deployed.name} of {args.model}: {state}\n"
        f"call it with model={deployed.name!r}; stop the charge with: finetune-kit undeploy "
        f"{deployed.name} --subscription {args.subscription} --resource-group "
        f"{args.resource_group} --account {args.account}\n"
    )
    return 0


def run_undeploy(args: argparse.Namespace) -> int:
    """``finetune-kit undeploy``: delete a deployment (its hosting charge stops)."""
    try:
        deployments = AzureDeployments(_resource(args))
        try:
            deleted = deployments.undeploy(args.name)
        finally:
            deployments.close()
    except Exception as exc:
        code = _refusal("undeploy", exc)
        if code is None:
            raise
        return code
    if deleted:
        sys.stdout.write(f"deleted deployment {args.name}\n")
    else:
        sys.stdout.write(f"no deployment {args.name} on {args.account}: nothing to delete\n")
    return 0
