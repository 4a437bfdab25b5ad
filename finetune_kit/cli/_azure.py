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
import warnings
from typing import TYPE_CHECKING

from .._exceptions import DeploymentError
from ..models._deployments import AzureDeployments, AzureResource, deployment_name_for
from ..models._hosting import IDLE_DELETION_DAYS, estimate_hosting_cost
from ..models._tuned_model import TunedModel
from ._ask import ask
from ._job import _fail, _positive_int

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the deployment commands to the ``finetune-kit`` parser."""
    deploy = sub.add_parser(
        "deploy",
        help="deploy a fine-tuned model on Azure OpenAI (shows the hosting cost first)",
        description=(
            "Show what keeping MODEL deployed costs, ask for confirmation (or pass --yes), "
            "deploy it on the Azure OpenAI resource (reusing a deployment of it) and wait "
            "until it answers. Azure bills a deployment per hour while it exists, called or "
            f"not, and deletes one left without calls for {IDLE_DELETION_DAYS} days."
        ),
    )
    deploy.add_argument("model", metavar="MODEL", help="the fine-tuned model id")
    _add_resource_arguments(deploy)
    deploy.add_argument("--name", help="the deployment name (default: from the model id)")
    deploy.add_argument(
        "--sku",
        default="Standard",
        help="deployment type: Standard, GlobalStandard, DeveloperTier (no hourly charge)",
    )
    deploy.add_argument("--capacity", type=_positive_int, default=1, help="SKU capacity")
    deploy.add_argument("--no-wait", action="store_true", help="do not wait for provisioning")
    deploy.add_argument("--no-progress", action="store_true", help="no progress bar")
    deploy.add_argument("--yes", "-y", action="store_true", help="deploy without asking")
    deploy.set_defaults(handler=_deploy)

    undeploy = sub.add_parser(
        "undeploy",
        help="delete an Azure OpenAI deployment (stops its hosting charge; the model stays)",
    )
    undeploy.add_argument("name", metavar="NAME", help="the deployment name")
    _add_resource_arguments(undeploy)
    undeploy.set_defaults(handler=_undeploy)


def _add_resource_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscription", required=True, help="the Azure subscription id")
    parser.add_argument("--resource-group", required=True, help="the resource group")
    parser.add_argument("--account", required=True, help="the Azure OpenAI resource name")
    parser.add_argument(
        "--management-url",
        default="https://management.azure.com",
        help="the Azure Resource Manager endpoint (another cloud)",
    )


def _resource(args: argparse.Namespace) -> AzureResource:
    return AzureResource(
        args.subscription, args.resource_group, args.account, management_url=args.management_url
    )


def _refusal(command: str, exc: Exception) -> int | None:
    """The exit code for an error a user can act on, after saying what it is; else None."""
    if isinstance(exc, DeploymentError):
        return _fail(command, exc)
    if isinstance(exc, ImportError):
        return _fail(command, exc, 2)
    if isinstance(exc, (TypeError, ValueError)):
        return _fail(command, exc, 2)
    if type(exc).__name__ == "ClientAuthenticationError":  # azure-core: no usable credential
        return _fail(command, f"Azure sign-in failed (try `az login`): {exc}")
    return None


def _deploy(args: argparse.Namespace) -> int:
    name = args.name or deployment_name_for(args.model)
    try:
        resource = _resource(args)
    except ValueError as exc:
        return _fail("deploy", exc, 2)
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
        answer = ask(f"Deploy {args.model} as {name!r} on {args.account} (billed per hour)?")
        if answer is None:
            return _fail(
                "deploy",
                "stdin is not a terminal, so there is nobody to confirm a deployment billed by "
                "the hour: pass --yes to deploy anyway",
                2,
            )
        if not answer:
            return _fail("deploy", "not deployed")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
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
    for warning in caught:
        sys.stderr.write(f"warning: {warning.message}\n")
    state = deployed.deployment.state if deployed.deployment else "unknown"
    sys.stdout.write(
        f"deployment {deployed.name} of {args.model}: {state}\n"
        f"call it with model={deployed.name!r}; stop the charge with: finetune-kit undeploy "
        f"{deployed.name} --subscription {args.subscription} --resource-group "
        f"{args.resource_group} --account {args.account}\n"
    )
    return 0


def _undeploy(args: argparse.Namespace) -> int:
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
