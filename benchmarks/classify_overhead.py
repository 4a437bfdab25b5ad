"""What classify() costs on top of the request it sends, measured against a loopback server.

Four numbers, each with its baseline measured in the same run:

1. client-side CPU per ``classify`` call against a bare ``client.chat.completions.create``
   with the same body (target: within 1.10x). CPU time of the calling thread only, so the
   server's work (another thread) is not counted; calls alternate, medians are compared.
2. ``classify_many`` (threads) and ``aclassify_many`` (one event loop) throughput against a
   server with a fixed latency, as a share of concurrency / latency (target: at least 80 %),
   next to the bare SDK doing the same requests with the same concurrency. The SDK spends a
   few milliseconds of CPU per request, under one GIL: at short latencies the process, not
   classify, is the limit (the bare rows show it).
3. the SDK-retries-off client copy: ``with_options(max_retries=0)`` per call against the
   cached copy reused after checking that none of the client's settings changed.
4. prompt tokens per call against a typical prompt-listing approach (a verbose system prompt
   listing the labels and asking for the label only), counted in the model's encoding.

Usage: ``python benchmarks/classify_overhead.py [--n 2000] [--latency 0.2] [--concurrency 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from _canned import CannedServer

from finetune_kit import aclassify_many, classify, classify_many
from finetune_kit.classification._classify import Spec, capability_key, sync_client
from finetune_kit.facts._tokens import num_tokens_from_messages

MODEL = "gpt-4o-mini"
LABELS = ["positive", "negative", "neutral"]
TEXT = "The delivery was late, but the support team sorted everything out quickly."
TYPICAL_SYSTEM = (
    "You are a helpful assistant that classifies text. Classify the user's text into exactly "
    "one of the following categories: positive, negative, neutral. Respond with only the name "
    "of the category, exactly as written above, and nothing else. Do not add any explanation, "
    "punctuation or quotes."
)


def _canned_completion() -> bytes:
    top = [("positive", math.log(0.7)), ("negative", math.log(0.2)), ("neutral", math.log(0.1))]
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "finish_reason": "length",
                "message": {"role": "assistant", "content": "positive", "refusal": None},
                "logprobs": {
                    "content": [
                        {
                            "token": "positive",
                            "bytes": list(b"positive"),
                            "logprob": top[0][1],
                            "top_logprobs": [
                                {"token": t, "bytes": list(t.encode()), "logprob": lp}
                                for t, lp in top
                            ],
                        }
                    ],
                    "refusal": None,
                },
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 1, "total_tokens": 31},
    }
    return json.dumps(body).encode()


def _start_server() -> CannedServer:
    return CannedServer(_canned_completion())


def _request_body(client: openai.OpenAI) -> dict[str, Any]:
    """Exactly what classify() sends for TEXT (the bare call sends the same)."""
    spec = Spec.build(LABELS, MODEL, capability_key(client, MODEL))
    technique, refused = spec.start()
    return spec.body(technique, spec.messages(technique, TEXT), refused)


def _cpu_of(fn: Any) -> float:
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def measure_cpu(client: openai.OpenAI, n: int) -> tuple[float, float]:
    """Median CPU seconds per call, calls interleaved one by one: (bare create, classify).

    Medians of single calls, not means of runs: on a busy machine a mean mostly measures the
    neighbours (cache misses, collections) and the order in which the runs happened.
    """
    body = _request_body(client)
    bare_client = sync_client(client)  # the same SDK-retries-off client classify() uses

    def bare() -> None:
        bare_client.chat.completions.create(**body, stream=False)

    def ours() -> None:
        classify(TEXT, labels=LABELS, model=MODEL, client=client)

    for _ in range(50):  # warm-up: connections, encodings, caches
        bare()
        ours()
    bare_times: list[float] = []
    our_times: list[float] = []
    for _ in range(n):
        bare_times.append(_cpu_of(bare))
        our_times.append(_cpu_of(ours))
    return statistics.median(bare_times), statistics.median(our_times)


def measure_throughput(
    client: openai.OpenAI, async_client: openai.AsyncOpenAI, n: int, concurrency: int
) -> dict[str, float]:
    """Texts per second of classify_many, aclassify_many and the bare SDK doing the same."""
    texts = [TEXT] * n
    body = _request_body(client)
    bare_client = sync_client(client)
    rates: dict[str, float] = {}

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: bare_client.chat.completions.create(**body, stream=False), texts))
    rates["bare create, thread pool"] = n / (time.perf_counter() - start)

    start = time.perf_counter()
    classify_many(
        texts, labels=LABELS, model=MODEL, client=client, concurrency=concurrency, progress=False
    )
    rates["classify_many"] = n / (time.perf_counter() - start)

    async def bare_async() -> None:
        limit = asyncio.Semaphore(concurrency)
        raw = async_client.with_options(max_retries=0)

        async def one() -> None:
            async with limit:
                await raw.chat.completions.create(**body, stream=False)

        await asyncio.gather(*(one() for _ in texts))

    async def ours_async() -> None:
        await aclassify_many(
            texts,
            labels=LABELS,
            model=MODEL,
            client=async_client,
            concurrency=concurrency,
            progress=False,
        )

    async def both() -> None:
        # One event loop for both: the async client's connections belong to the loop.
        for name, run in (("bare create, asyncio", bare_async), ("aclassify_many", ours_async)):
            begin = time.perf_counter()
            await run()
            rates[name] = n / (time.perf_counter() - begin)

    asyncio.run(both())
    return rates


def prompt_tokens(client: openai.OpenAI) -> tuple[int, int]:
    """Prompt tokens per call: (classify, the typical prompt-listing approach)."""
    ours = num_tokens_from_messages(_request_body(client)["messages"], model=MODEL)
    typical = num_tokens_from_messages(
        [{"role": "system", "content": TYPICAL_SYSTEM}, {"role": "user", "content": TEXT}],
        model=MODEL,
    )
    return ours, typical


def measure_client_copy(client: openai.OpenAI, n: int) -> tuple[float, float]:
    """Seconds per ``with_options(max_retries=0)`` and per checked reuse of the cached copy."""
    started = time.process_time()
    for _ in range(n):
        client.with_options(max_retries=0)
    fresh = (time.process_time() - started) / n
    sync_client(client)
    started = time.process_time()
    for _ in range(n):
        sync_client(client)
    return fresh, (time.process_time() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="calls for the CPU measurement")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.2,
        help="server latency in seconds (default 0.2, typical of a one-token completion)",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    server = _start_server()
    base_url = server.base_url
    client = openai.OpenAI(api_key="sk-bench", base_url=base_url)
    async_client = openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url)
    print(
        f"classify() overhead (openai {openai.__version__}, Python {platform.python_version()}, "
        f"loopback server)"
    )

    bare, ours = measure_cpu(client, args.n)
    print(
        f"client CPU per call: bare create {bare * 1e6:.0f} us, classify {ours * 1e6:.0f} us "
        f"-> {ours / bare:.2f}x (target <= 1.10x)"
    )

    fresh, reused = measure_client_copy(client, args.n)
    print(
        f"client copy per call: with_options {fresh * 1e6:.0f} us, checked reuse "
        f"{reused * 1e6:.1f} us -> {reused / fresh:.2f}x"
    )

    server.latency = args.latency
    ideal = args.concurrency / args.latency
    n_texts = max(4 * args.concurrency, int(ideal * 2))
    rates = measure_throughput(client, async_client, n_texts, args.concurrency)
    print(
        f"throughput at concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms "
        f"(ideal {ideal:.1f} texts/s; target for classify_many >= 80%):"
    )
    for name, rate in rates.items():
        print(f"  {name:<26}{rate:7.1f} texts/s  {rate / ideal:4.0%} of ideal")

    ours_tokens, typical_tokens = prompt_tokens(client)
    print(
        f"prompt tokens per call: classify {ours_tokens}, typical prompt-listing "
        f"{typical_tokens} -> {ours_tokens / typical_tokens:.2f}x; output tokens: classify 1"
    )
    server.shutdown()


if __name__ == "__main__":
    main()
