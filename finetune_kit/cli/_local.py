"""`finetune-kit` commands for the local area (see ``_cli.py`` for the conventions).

``serve`` runs the local backend in the foreground until interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's commands to the ``finetune-kit`` parser."""
    serve = sub.add_parser(
        "serve",
        help="run the local OpenAI-compatible fine-tuning backend",
        description=(
            "Run the local backend: an OpenAI-compatible service (files, uploads, fine-tuning "
            "jobs, models, chat completions, batches) that trains a small built-in model. "
            "Point a client at the printed base URL."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    serve.add_argument(
        "--data-dir", default=None, help="keep state here (SQLite + files); default: memory"
    )
    serve.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="inject faults, e.g. '429@POST:/fine_tuning/jobs,first=2;slow@*,rate=0.1,delay=2'",
    )
    serve.add_argument(
        "--speed", type=float, default=1.0, help="run jobs this many times faster (default 1)"
    )
    serve.add_argument(
        "--api-key",
        default=None,
        help="require this key (default: $FINETUNE_KIT_LOCAL_API_KEY, else none); "
        "needed to bind to a non-loopback address",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..local import Faults, LocalServer

    try:
        faults = Faults.parse(args.faults) if args.faults else None
    except ValueError as exc:
        sys.stderr.write(f"finetune-kit serve: --faults: {exc}\n")
        return 2
    api_key = args.api_key or os.environ.get("FINETUNE_KIT_LOCAL_API_KEY") or None
    try:
        server = LocalServer(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            faults=faults,
            speed=args.speed,
            api_key=api_key,
        )
        server.start()
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"finetune-kit serve: {exc}\n")
        return 2
    key_hint = "the configured key" if api_key else "any key"
    sys.stdout.write(
        f"Local backend listening on {server.url}\n"
        f"  export OPENAI_BASE_URL={server.url}\n"
        f"  export OPENAI_API_KEY=...  ({key_hint})\n"
        "Press Ctrl+C to stop.\n"
    )
    sys.stdout.flush()
    server.serve_forever()
    return 0
