"""Per-request cost of the local backend, against a bare app on the same stack in the same run.

Sequential ``chat.completions.create`` calls (one client, kept-alive connection), median
wall time per call:

1. baseline: a bare Starlette route returning a canned completion, served by uvicorn on
   loopback exactly as ``LocalServer`` serves (the floor: SDK + HTTP + framework);
2. the local backend over loopback (``LocalServer()``);
3. the local backend in process (``LocalServer(in_process=True)``, no socket).

Row 2 over row 1 is what the backend's own work costs. A kept-alive response that waits for
Nagle's algorithm shows up here as ~40 ms a call.

Usage: ``python benchmarks/local_backend.py [--n 300]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import TYPE_CHECKING

import openai
from _canned import CannedServer

from finetune_kit.local import LocalServer

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Classify the topic. Answer with one of: ai, coding, trivia"},
    {"role": "user", "content": "How do I reverse a list in Python?"},
]


def _canned() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "coding", "refusal": None},
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 1, "total_tokens": 31},
        }
    ).encode()


def _median_ms(client: openai.OpenAI, n: int) -> float:
    def call() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)

    for _ in range(20):  # warm-up: connection, encodings, caches
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=300, help="calls per row")
    args = parser.parse_args()

    bare = CannedServer(_canned())
    with openai.OpenAI(api_key="sk-bench", base_url=bare.base_url) as client:
        baseline = _median_ms(client, args.n)
    bare.shutdown()
    with LocalServer() as server:
        loopback = _median_ms(server.client(max_retries=0), args.n)
    with LocalServer(in_process=True) as server:
        in_process = _median_ms(server.client(max_retries=0), args.n)

    print(f"local backend, median ms per chat completion (openai {openai.__version__}):")
    print(f"  baseline (bare Starlette + uvicorn) {baseline:7.2f} ms")
    print(f"  local backend, loopback             {loopback:7.2f} ms  {loopback / baseline:5.2f}x")
    print(
        f"  local backend, in process           {in_process:7.2f} ms  {in_process / baseline:5.2f}x"
    )


if __name__ == "__main__":
    main()
