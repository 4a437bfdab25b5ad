"""`finetune-kit` commands for the local area (see ``_main.py`` for the conventions).

``serve`` runs the local backend in the foreground until interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ._common import fail

if TYPE_CHECKING:
    import argparse

__all__ = ["run_serve"]


def run_serve(args: argparse.Namespace) -> int:
    """``finetune-kit serve``: the local backend in the foreground."""
    from ..local import Faults, LocalServer

    try:
        faults = Faults.parse(args.faults) if args.faults else None
    except ValueError as exc:
        return fail("serve", f"--faults: {exc}", 2)
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
        return fail("serve", exc, 2)
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
