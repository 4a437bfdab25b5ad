"""classify_batch(): the same classification requests through the Batch API.

For very large jobs at about half the price: the requests :func:`~finetune_kit.classify`
would send go into JSONL input files (at most 50,000 requests and 190 MB per file, the
service's limits with a margin), one batch per file on ``/v1/chat/completions`` with the 24 h
window; the batches are polled until they end, their output and error files downloaded and
matched to the texts by ``custom_id``; results come back in input order.

The ladder needs answers to choose a rung, and a batch cannot change course midway: so when
the endpoint's capabilities for the model are not yet known, the first text is classified
live first (at the normal price) and the batch uses the rung that worked. Answers that need a
follow-up (a re-ask of the ``prompt`` rung) get it live, one by one. Each text's answer is
read by the same code as :func:`~finetune_kit.classify`, so the guarantee is the same.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Final

import pydantic
from openai.types.chat import ChatCompletion

from .._core.client import Request, Sleep, arun_flow, run_flow
from .._core.progress import progress_bar
from .._exceptions import ClassificationError
from ._classify import (
    ItemResult,
    Spec,
    async_client,
    capability_key,
    classify_steps,
    is_settled,
    item_error,
    sync_client,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    import openai
    from openai.types import Batch, FileObject

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ._classify import ExamplesInput, LabelsInput, Technique, TechniqueChoice, TextInput

__all__ = ["aclassify_batch", "classify_batch"]

logger = logging.getLogger("finetune_kit")

#: Requests per input file (the Batch API's limit).
MAX_REQUESTS: Final = 50_000
#: Bytes per input file: the limit is 200 MB; the margin covers JSON size estimates.
MAX_BYTES: Final = 190 * 1024 * 1024
_ENDPOINT: Final = "/v1/chat/completions"
_TERMINAL: Final = frozenset({"completed", "failed", "expired", "cancelled"})


def custom_id(index: int) -> str:
    """The ``custom_id`` of the text at ``index``."""
    return f"text-{index}"


def input_files(
    spec: Spec,
    texts: Sequence[TextInput],
    indices: Iterable[int],
    technique: Technique,
    refused: set[str],
    *,
    max_requests: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[tuple[list[int], bytes]]:
    """The JSONL input files: (the indices of the texts in it, its content), in order.

    Args:
        max_requests: requests per file (default :data:`MAX_REQUESTS`).
        max_bytes: bytes per file (default :data:`MAX_BYTES`).
    """
    max_requests = max_requests or MAX_REQUESTS
    max_bytes = max_bytes or MAX_BYTES
    chunk: list[int] = []
    lines: list[bytes] = []
    size = 0
    for i in indices:
        body = spec.body(technique, spec.messages(technique, texts[i]), refused)
        request = {"custom_id": custom_id(i), "method": "POST", "url": _ENDPOINT, "body": body}
        line = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        if chunk and (len(chunk) >= max_requests or size + len(line) > max_bytes):
            yield chunk, b"".join(lines)
            chunk, lines, size = [], [], 0
        chunk.append(i)
        lines.append(line)
        size += len(line)
    if chunk:
        yield chunk, b"".join(lines)


def read_output(content: bytes) -> dict[str, ChatCompletion | str]:
    """An output or error file: ``custom_id`` -> the completion, or what went wrong."""
    found: dict[str, ChatCompletion | str] = {}
    for raw in content.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        key = str(line.get("custom_id"))
        response = line.get("response") or {}
        body = response.get("body")
        error = line.get("error")
        status = response.get("status_code")
        if error:
            found[key] = f"{error.get('code') or 'error'}: {error.get('message')}"
        elif status != 200 or not isinstance(body, dict):
            inner = body.get("error") if isinstance(body, dict) else None
            message = inner.get("message") if isinstance(inner, dict) else body
            found[key] = f"HTTP {status}: {message}"
        else:
            try:
                found[key] = ChatCompletion.model_validate(body)
            except pydantic.ValidationError as exc:
                found[key] = f"unreadable completion: {exc}"
    return found


def _upload(name: str, content: bytes) -> Request:
    return Request(
        f"upload batch input {name}",
        lambda c: c.files.create(file=(name, content), purpose="batch"),
    )


def _create(file_id: str, metadata: dict[str, str]) -> Request:
    return Request(
        f"create batch for {file_id}",
        lambda c: c.batches.create(
            input_file_id=file_id,
            endpoint=_ENDPOINT,
            completion_window="24h",
            metadata=metadata,
        ),
    )


def _retrieve(batch_id: str) -> Request:
    return Request(f"retrieve batch {batch_id}", lambda c: c.batches.retrieve(batch_id))


def _download(file_id: str) -> Request:
    return Request(f"download batch file {file_id}", lambda c: c.files.content(file_id))


def _why_missing(batch: Batch) -> str:
    if batch.status == "failed" and batch.errors and batch.errors.data:
        reasons = "; ".join(f"{e.code}: {e.message}" for e in batch.errors.data[:3])
        return f"batch {batch.id} failed ({reasons})"
    return f"batch {batch.id} ended {batch.status} before this text was processed"


def batch_flow(
    spec: Spec,
    texts: Sequence[TextInput],
    *,
    poll_interval: float,
    timeout: float | None,
    bar: Any,
) -> Flow[list[ItemResult]]:
    """The whole batch path as a flow: probe, upload, create, poll, download, read."""
    results: list[ItemResult | None] = [None] * len(texts)
    start = 0
    if texts and spec.choice == "auto" and not is_settled(spec.key):
        try:
            results[0] = yield from classify_steps(spec, texts[0])
        except Exception as exc:
            results[0] = item_error(exc, spec, 0)
        bar.update(1)
        start = 1
    technique, refused = spec.start()
    files = list(input_files(spec, texts, range(start, len(texts)), technique, refused))
    batches: list[tuple[Batch, list[int]]] = []
    for number, (indices, content) in enumerate(files, start=1):
        name = f"finetune_kit-classify-{number}-of-{len(files)}.jsonl"
        uploaded: FileObject = yield _upload(name, content)
        metadata = {"created_by": "finetune_kit classify_batch", "model": spec.model[:500]}
        batch: Batch = yield _create(uploaded.id, metadata)
        logger.info("batch %s: %d texts for %s", batch.id, len(indices), spec.model)
        batches.append((batch, indices))

    waited = 0.0
    while True:
        for k, (batch, indices) in enumerate(batches):
            if batch.status not in _TERMINAL:
                batches[k] = ((yield _retrieve(batch.id)), indices)
        done = start + sum(
            b.request_counts.completed + b.request_counts.failed
            for b, _ in batches
            if b.request_counts is not None
        )
        bar.update(max(0, done - bar.n))
        running = [b.id for b, _ in batches if b.status not in _TERMINAL]
        if not running:
            break
        if timeout is not None and waited >= timeout:
            raise TimeoutError(
                f"batches {', '.join(running)} still running after {waited:.0f}s; they keep "
                "running on the service (see client.batches.retrieve)"
            )
        yield Sleep(poll_interval)
        waited += poll_interval

    for batch, indices in batches:
        answers: dict[str, ChatCompletion | str] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = yield _download(file_id)
                answers.update(read_output(content.content))
        if batch.status != "completed":
            logger.warning("%s", _why_missing(batch))
        for i in indices:
            answer = answers.get(custom_id(i))
            if answer is None:
                answer = _why_missing(batch)
            if isinstance(answer, str):
                results[i] = ClassificationError(
                    f"text {i}: {answer}", raw_output=None, labels=spec.labels.names
                )
                continue
            try:
                results[i] = yield from classify_steps(
                    spec, texts[i], prefetched=(technique, answer)
                )
            except Exception as exc:
                results[i] = item_error(exc, spec, i)
    bar.update(len(texts) - bar.n)
    return [r for r in results if r is not None]


def classify_batch(
    texts: Sequence[TextInput],
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
    poll_interval: float = 30.0,
    timeout: float | None = None,
    progress: bool = True,
) -> list[ItemResult]:
    """Classify many texts through the Batch API; results in input order.

    Blocks until every batch has ended (the service allows 24 hours). Polling waits use the
    retry policy's ``sleep`` (so tests inject one). The other arguments (``labels``,
    ``model``, ``client``, ``instructions``, ``examples``, ``technique``, ``abstain_below``,
    ``retry``, ``reasks``, ``base_model``) are those of :func:`~finetune_kit.classify`.

    Args:
        texts: the texts (strings or message lists).
        poll_interval: seconds between status checks.
        timeout: give up waiting after this many seconds of polling (None: wait for the
            service's own 24 h window). The batches keep running.
        progress: show a progress bar.

    Returns:
        One :class:`~finetune_kit.Classification` or
        :class:`~finetune_kit.ClassificationError` per text.

    Raises:
        TimeoutError: ``timeout`` passed with batches still running.
    """
    resolved = sync_client(client)
    spec = Spec.build(
        labels=labels,
        model=model,
        key=capability_key(resolved, model),
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    items = list(texts)
    with progress_bar(
        total=len(items), enabled=progress, description=f"batch {model}", unit="text"
    ) as bar:
        flow = batch_flow(spec, items, poll_interval=poll_interval, timeout=timeout, bar=bar)
        return run_flow(flow, resolved, retry)


async def aclassify_batch(
    texts: Sequence[TextInput],
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
    poll_interval: float = 30.0,
    timeout: float | None = None,
    progress: bool = True,
) -> list[ItemResult]:
    """The async sibling of :func:`classify_batch` (waits with the policy's ``async_sleep``)."""
    resolved = async_client(client)
    spec = Spec.build(
        labels=labels,
        model=model,
        key=capability_key(resolved, model),
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    items = list(texts)
    with progress_bar(
        total=len(items), enabled=progress, description=f"batch {model}", unit="text"
    ) as bar:
        flow = batch_flow(spec, items, poll_interval=poll_interval, timeout=timeout, bar=bar)
        return await arun_flow(flow, resolved, retry)
