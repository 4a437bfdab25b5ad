"""``finetune-kit demo``: the whole fine-tuning loop on bundled data, offline by default."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from ._common import ask, fail

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from .._core.retry import RetryPolicy
    from ..local import LocalServer
    from ..models._deployments import AzureDeployments
    from ._demo_flow import AzureDemo, DemoSummary

__all__ = ["run_demo_command"]


def _quiet(line: str) -> None:
    del line


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_demo_command(args: argparse.Namespace) -> int:
    """``finetune-kit demo``: the whole loop, locally or on ``--remote``."""
    import openai

    from ._demo_flow import DEMO_AZURE_MODEL, DEMO_MODEL, DemoDeclined

    model: str = args.model or (DEMO_AZURE_MODEL if args.azure else DEMO_MODEL)
    say = _quiet if args.as_json else _say
    progress = not (args.as_json or args.no_progress)
    try:
        if args.remote:
            summary = _run_remote(args, model=model, say=say, progress=progress)
        else:
            summary = _run_local(
                model=model,
                say=say,
                progress=progress,
                speed=args.speed,
                azure_tier=args.tier if args.azure else None,
            )
    except DemoDeclined as exc:
        return fail("demo", exc)
    except (openai.OpenAIError, ImportError, ValueError) as exc:
        # --remote without OPENAI_API_KEY; --azure without the extra; a tier the model lacks
        return fail("demo", exc, 2)
    if args.as_json:
        sys.stdout.write(json.dumps(summary.as_dict(), sort_keys=True) + "\n")
    else:
        say(
            f"done in {summary.seconds:.1f}s: accuracy {summary.base_accuracy:.1%} (base) -> "
            f"{summary.tuned_accuracy:.1%} (tuned)"
        )
    return 0


def _run_local(
    *, model: str, say: Callable[[str], None], progress: bool, speed: float, azure_tier: str | None
) -> DemoSummary:
    """The demo on the local backend; with ``azure_tier``, the Azure way (tier, deployment)."""
    from ._demo_flow import run_demo

    server, retry = _local_backend(speed)
    with server:
        deployments = None if azure_tier is None else _local_deployments(server, retry)
        if deployments is None:
            say(f"finetune-kit demo on the local backend at {server.url} (no key, no cost)")
            client = server.client()
        else:
            say(
                f"finetune-kit demo, the Azure OpenAI way, on the local backend at "
                f"{server.root_url} (no Azure account, no cost)"
            )
            client = server.azure_client()
        try:
            with client:
                return run_demo(
                    client,
                    backend="local" if deployments is None else "local-azure",
                    model=model,
                    progress=progress,
                    say=say,
                    # A local job takes seconds, not minutes: poll it often.
                    poll_interval=0.5,
                    retry=retry,
                    azure=_azure_demo(deployments, azure_tier),
                )
        finally:
            if deployments is not None:
                deployments.close()


def _local_deployments(server: LocalServer, retry: RetryPolicy | None) -> AzureDeployments:
    """The local backend's own Azure control plane, with a static credential: nothing tries
    to sign in to Azure (``DefaultAzureCredential`` would)."""
    from ..local import StaticToken
    from ..models._deployments import AzureDeployments, AzureResource

    resource = AzureResource(
        "local-subscription", "local-group", "local-account", management_url=server.management_url
    )
    return AzureDeployments(resource, credential=StaticToken(), retry=retry, poll_interval=0.25)


def _azure_demo(deployments: AzureDeployments | None, tier: str | None) -> AzureDemo | None:
    from ._demo_flow import AzureDemo

    if deployments is None or tier is None:
        return None
    return AzureDemo(deployments, tier=tier)


def _local_backend(speed: float) -> tuple[LocalServer, RetryPolicy | None]:
    """The server the demo runs on, and the retry policy to use with it (None: default)."""
    from ..local import LocalServer

    return LocalServer(speed=speed), None


def _run_remote(
    args: argparse.Namespace, *, model: str, say: Callable[[str], None], progress: bool
) -> DemoSummary:
    import openai

    from ._demo_flow import run_demo

    client = openai.OpenAI()  # from OPENAI_API_KEY, OPENAI_BASE_URL, ...
    say(f"finetune-kit demo on {client.base_url} (this costs money)")

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        answer = ask(question)
        if answer is None:
            sys.stderr.write(f"{question}\nNo terminal to ask on: pass --yes to go ahead.\n")
        return bool(answer)

    return run_demo(
        client,
        backend=str(client.base_url),
        model=model,
        progress=progress,
        say=say,
        confirm=confirm,
    )
