"""``finetune-kit demo``: the whole fine-tuning loop on bundled data, offline by default."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from ._main import ask

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from .._core.retry import RetryPolicy
    from ..local import LocalServer
    from ._demo_flow import DemoSummary


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the ``finetune-kit`` parser."""
    parser = sub.add_parser(
        "demo",
        help="run the whole fine-tuning loop on bundled data (local backend, no key needed)",
        description=(
            "Validate, estimate, split, upload, fine-tune, evaluate base vs tuned on the "
            "held-out split and classify a few texts — on the built-in local backend, or with "
            "--remote on the endpoint your OPENAI_* environment names."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary only")
    parser.add_argument(
        "--remote",
        action="store_true",
        help="use the OPENAI_* environment's endpoint (costs money; asks first)",
    )
    parser.add_argument("--model", default=None, help="base model to fine-tune")
    parser.add_argument("--yes", action="store_true", help="do not ask before spending money")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="pace of the local backend's jobs (2 = twice as fast; default 1)",
    )
    parser.set_defaults(handler=_demo)


def _quiet(line: str) -> None:
    del line


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _demo(args: argparse.Namespace) -> int:
    import openai

    from ._demo_flow import DEMO_MODEL, DemoDeclined

    model: str = args.model or DEMO_MODEL
    say = _quiet if args.json else _say
    progress = not (args.json or args.no_progress)
    try:
        if args.remote:
            summary = _run_remote(args, model=model, say=say, progress=progress)
        else:
            summary = _run_local(model=model, say=say, progress=progress, speed=args.speed)
    except DemoDeclined as exc:
        sys.stderr.write(f"finetune-kit demo: {exc}\n")
        return 1
    except openai.OpenAIError as exc:  # e.g. --remote without OPENAI_API_KEY
        sys.stderr.write(f"finetune-kit demo: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(summary.as_dict(), sort_keys=True) + "\n")
    else:
        say(
            f"done in {summary.seconds:.1f}s: accuracy {summary.base_accuracy:.1%} (base) -> "
            f"{summary.tuned_accuracy:.1%} (tuned)"
        )
    return 0


def _run_local(
    *, model: str, say: Callable[[str], None], progress: bool, speed: float
) -> DemoSummary:
    from ._demo_flow import run_demo

    server, retry = _local_backend(speed)
    with server:
        say(f"finetune-kit demo on the local backend at {server.url} (no key, no cost)")
        with server.client() as client:
            return run_demo(
                client,
                backend="local",
                model=model,
                progress=progress,
                say=say,
                # A local job takes seconds, not minutes: poll it often.
                poll_interval=0.5,
                retry=retry,
            )


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
