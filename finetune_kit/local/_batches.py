"""Batches over ``/v1/chat/completions``: validating -> in_progress -> finalizing -> completed.

Like jobs, batches move when a request calls :meth:`Batches.advance`; the requests of a
batch due to run are answered *outside* the lock (claimed first, see
:class:`~._lifecycle.Lifecycle`), so the server keeps answering while a large batch runs.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any, Final

from ..facts._limits import MAX_BATCH_REQUESTS
from ._completions import create_chat_completion
from ._errors import ApiError, bad_request, lookup
from ._inputs import batch_lines
from ._lifecycle import Lifecycle
from ._records import BatchRecord
from ._state import limit, page, rand

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._files import Files
    from ._models import Models
    from ._state import State

__all__ = ["Batches"]

_TERMINAL: Final = ("completed", "failed", "cancelled", "expired")
_ENDPOINT: Final = "/v1/chat/completions"


def _result_line(custom_id: Any, status: int, body: dict[str, Any], error: Any) -> str:
    return json.dumps(
        {
            "id": "batch_req_" + rand(24),
            "custom_id": custom_id,
            "response": {
                "status_code": status,
                "request_id": "req_" + secrets.token_hex(16),
                "body": body,
            },
            "error": error,
        }
    )


def run_lines(
    models: Models, lines: list[dict[str, Any]], stop: Callable[[], bool]
) -> tuple[list[str], list[str]]:
    """Answer each batch line: ``(output lines, error lines)`` as JSON strings; the lines
    answered so far once ``stop()`` says so (the batch was cancelled)."""
    outputs: list[str] = []
    failures: list[str] = []
    for line in lines:
        if stop():
            break
        try:
            if line.get("url") != _ENDPOINT:
                raise bad_request(f"Unsupported url {line.get('url')!r}.", param="url")
            body = line.get("body")
            if not isinstance(body, dict):
                raise bad_request("Missing or invalid 'body'.", param="body")
            response = create_chat_completion(models, body)
        except ApiError as exc:
            error = {"code": exc.code or exc.type, "message": exc.message}
            failures.append(_result_line(line.get("custom_id"), exc.status, exc.body(), error))
            continue
        outputs.append(_result_line(line.get("custom_id"), 200, response, None))
    return outputs, failures


#: A batch's outcome: its output lines and its error lines.
_Results = tuple[list[str], list[str]]


class Batches(Lifecycle[BatchRecord, list[dict[str, Any]], _Results]):
    """The batches API and the batches' lifecycle (answering the requests is the work)."""

    KIND = "batch"
    RESTING = _TERMINAL

    def __init__(self, state: State, files: Files, models: Models) -> None:
        super().__init__(state, files, models)
        self.batches = state.records("batch", BatchRecord.from_doc)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a batch over ``/v1/chat/completions`` (``metadata`` kept as given)."""
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str):
            raise bad_request("Missing required parameter: 'input_file_id'.", param="input_file_id")
        endpoint = body.get("endpoint")
        if endpoint != _ENDPOINT:
            raise bad_request(
                f"Unsupported endpoint {endpoint!r}: the local backend batches '{_ENDPOINT}' only.",
                param="endpoint",
            )
        if body.get("completion_window", "24h") != "24h":
            raise bad_request("Invalid 'completion_window': only '24h'.", param="completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise bad_request("Invalid 'metadata': string keys and values.", param="metadata")
        with self.s.lock:
            record = self.files.record(input_file_id, param="input_file_id")
            if record.purpose != "batch":
                raise bad_request(
                    f"File {input_file_id} has purpose '{record.purpose}', not 'batch'.",
                    param="input_file_id",
                )
            now = self.s.now()
            batch = BatchRecord(
                id="batch_" + rand(24),
                input_file_id=input_file_id,
                created_at=int(now),
                metadata=metadata,
                phase_start=now,
            )
            self.batches[batch.id] = batch
            self.s.db.save("batch", batch.id, batch.to_doc())
            return batch.to_api()

    def get(self, bid: str) -> dict[str, Any]:
        """One batch."""
        with self.s.lock:
            return lookup(self.batches, "batch", bid).to_api()

    def cancel(self, bid: str) -> dict[str, Any]:
        """Cancel a batch that has not finished."""
        with self.s.lock:
            batch = lookup(self.batches, "batch", bid)
            if batch.status in _TERMINAL:
                raise bad_request(f"Batch {bid} is already {batch.status}.")
            now = int(self.s.now())
            batch.enter("cancelling", now)
            batch.enter("cancelled", now)
            self.s.db.save("batch", bid, batch.to_doc())
            return batch.to_api()

    # ------------------------------------------------------------------------ lifecycle

    # Lifecycle's steps: a batch due to run hands out its lines; answering them is the work.

    def _records(self) -> Iterable[BatchRecord]:
        return self.batches.values()

    def _work(
        self, batch: BatchRecord, lines: list[dict[str, Any]], moved: Callable[[], bool]
    ) -> _Results:
        del batch  # the lines are all the work needs
        return run_lines(self.models, lines, moved)

    def _break(self, batch: BatchRecord, now: float) -> None:
        batch.enter("failed", now)
        self.s.stage("batch", batch.id, batch.to_doc())

    def _move(self, batch: BatchRecord, now: float) -> tuple[list[dict[str, Any]], float] | None:
        """Move ``batch`` on; returns its lines when they are due to run, and when."""
        t = self.s.timing
        if batch.status == "validating" and now >= batch.phase_start + t.batch_validating:
            at = batch.phase_start + t.batch_validating
            lines, errors = batch_lines(self.s.db.get_blob(batch.input_file_id) or b"")
            if len(lines) > MAX_BATCH_REQUESTS:
                errors.append(
                    {
                        "code": "too_many_requests",
                        "line": None,
                        "message": f"A batch holds at most {MAX_BATCH_REQUESTS} requests.",
                        "param": None,
                    }
                )
            if errors:
                batch.enter("failed", at)
                batch.errors = {"object": "list", "data": errors}
            else:
                batch.enter("in_progress", at)
                batch.total = len(lines)
                batch.phase_start = at
            self.s.stage("batch", batch.id, batch.to_doc())
        if batch.status == "in_progress" and now >= batch.phase_start + t.batch_in_progress:
            lines, _ = batch_lines(self.s.db.get_blob(batch.input_file_id) or b"")
            return lines, batch.phase_start + t.batch_in_progress
        if batch.status == "finalizing" and now >= batch.phase_start + t.batch_finalizing:
            batch.enter("completed", batch.phase_start + t.batch_finalizing)
            self.s.stage("batch", batch.id, batch.to_doc())
        return None

    def _finish(self, batch: BatchRecord, outcome: _Results, at: float) -> None:
        outputs, failures = outcome
        batch.completed = len(outputs)
        batch.failed = len(failures)
        batch.output_file_id = self._results(batch, "output", outputs)
        batch.error_file_id = self._results(batch, "error", failures)
        batch.enter("finalizing", at)
        batch.phase_start = at
        self.s.stage("batch", batch.id, batch.to_doc())

    def _results(self, batch: BatchRecord, kind: str, lines: list[str]) -> str | None:
        """Store result lines as a ``batch_output`` file; its id (None when no lines)."""
        if not lines:
            return None
        data = ("\n".join(lines) + "\n").encode()
        name = f"{batch.id}_{kind}.jsonl"
        return self.files.add(filename=name, purpose="batch_output", data=data).id

    # Last in the class: the name ``list`` would shadow the builtin in later annotations.
    def list(self, *, after: str | None, limit: Any) -> dict[str, Any]:
        """Batches, newest first, with their metadata."""
        count = _limit(limit, 20, 100)
        with self.s.lock:
            return page(list(reversed(self.batches.values())), after, count)


# The list method's ``limit`` parameter shadows the helper's name inside it.
_limit = limit
