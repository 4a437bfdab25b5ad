"""A fuller fake of the files and batches endpoints for the batch tests (no tests here).

:class:`FakeBatchService` extends ``classify_fakes.FakeBatches`` (which answers the batches)
with what exactly-once submission and clean-up need: file names and sizes, listing files and
batches (newest first, paged), batch ``metadata``, retrieving and deleting files, a server
clock of its own, and faults per create step.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal

import httpx

from finetune_kit import Classification

from .classify_fakes import FakeBatches, answer_batch_line

if TYPE_CHECKING:
    from collections.abc import Callable

    import respx

    from finetune_kit import ClassificationError

#: ``drop`` / ``500``: fail before the service acts; ``drop_after`` / ``500_after``: the
#: service acts, then the reply is lost or is a 500 - what idempotency keys are for.
Fault = Literal["drop", "500", "drop_after", "500_after"]

_NAME = re.compile(rb'filename="([^"]*)"')


def _error(status: int, message: str, code: str | None = None) -> httpx.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return httpx.Response(status, json={"error": error})


class Crash(Exception):
    """The process dies while waiting (what a kill or a reboot does to a long wait)."""


def labels_of(results: list[Classification | ClassificationError]) -> list[str | None]:
    """Each result's label (None for a failure or an abstention)."""
    return [r.label if isinstance(r, Classification) else None for r in results]


class FakeBatchService(FakeBatches):
    """Files and batches with listing, metadata, deletion and faults.

    Attributes:
        faults: per step (``"upload"``, ``"create"``, ``"delete"``), the faults the next
            requests of that step meet, in order.
        server_time: the ``created_at`` the service stamps (its own clock).
        names: file id -> the uploaded file name.
        deleted: ids of deleted files, in order.
        listed: how many list requests were served, per endpoint.
        on_poll: called on each batch retrieve (a test advances its clock there).
        ignores_paging: behave like a compatible server that ignores ``after`` and leaves
            out ``has_more`` (every list request gets the first page again).
    """

    def __init__(
        self,
        api: respx.Router,
        *,
        answer: Callable[[dict[str, Any]], dict[str, Any]] = answer_batch_line,
        outcome: str = "completed",
        answered: int | None = None,
        polls_until_done: int = 1,
        server_time: float = 1_700_000_000.0,
        page_size: int | None = None,
        on_poll: Callable[[], object] | None = None,
        ignores_paging: bool = False,
    ) -> None:
        super().__init__(
            api,
            answer=answer,
            outcome=outcome,
            answered=answered,
            polls_until_done=polls_until_done,
        )
        self.server_time = server_time
        self.page_size = page_size
        self.on_poll = on_poll
        self.ignores_paging = ignores_paging
        self.faults: dict[str, list[Fault]] = {"upload": [], "create": [], "delete": []}
        self.names: dict[str, str] = {}
        self.stamps: dict[str, int] = {}
        self.deleted: list[str] = []
        self.listed = {"batches": 0, "files": 0}
        api.get("/batches").mock(side_effect=self._list_batches)
        api.get("/files").mock(side_effect=self._list_files)
        api.get(url__regex=r".*/files/(?P<file_id>[^/?]+)$").mock(side_effect=self._retrieve_file)
        api.delete(url__regex=r".*/files/(?P<file_id>[^/?]+)$").mock(side_effect=self._delete)

    # --- faults -------------------------------------------------------------------------------

    def _perform(
        self, step: str, act: Callable[[], httpx.Response], request: httpx.Request
    ) -> httpx.Response:
        fault = self.faults[step].pop(0) if self.faults[step] else None
        if fault == "drop":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "500":
            return _error(500, "The server had an error", "server_error")
        response = act()
        if fault == "drop_after":
            raise httpx.ConnectError("connection reset", request=request)
        if fault == "500_after":
            return _error(500, "The server had an error", "server_error")
        return response

    # --- files --------------------------------------------------------------------------------

    def _upload(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            response = super(FakeBatchService, self)._upload(request)
            file_id = response.json()["id"]
            found = _NAME.search(request.content)
            self.names[file_id] = found.group(1).decode() if found else "upload.jsonl"
            self.stamps[file_id] = int(self.server_time)
            return httpx.Response(200, json=self.file_json(file_id))

        return self._perform("upload", act, request)

    def file_json(self, file_id: str) -> dict[str, Any]:
        """The file object the service shows for ``file_id``."""
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": self.stamps.get(file_id, int(self.server_time)),
            "filename": self.names.get(file_id, f"{file_id}.jsonl"),
            "purpose": "batch" if file_id in self.names else "batch_output",
            "status": "processed",
        }

    def _list_files(self, request: httpx.Request) -> httpx.Response:
        self.listed["files"] += 1
        purpose = request.url.params.get("purpose")
        items = [self.file_json(f) for f in reversed(self.files)]
        items = [f for f in items if purpose in (None, f["purpose"])]
        if request.url.params.get("order") == "asc":
            items.reverse()
        return httpx.Response(200, json=self._page(request, items))

    def _retrieve_file(self, request: httpx.Request, file_id: str) -> httpx.Response:
        del request
        if file_id not in self.files:
            return _error(404, f"No such File object: {file_id}")
        return httpx.Response(200, json=self.file_json(file_id))

    def _content(self, request: httpx.Request, file_id: str) -> httpx.Response:
        if file_id not in self.files:
            return _error(404, f"No such File object: {file_id}")
        return super()._content(request, file_id)

    def _delete(self, request: httpx.Request, file_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            if file_id not in self.files:
                return _error(404, f"No such File object: {file_id}")
            del self.files[file_id]
            self.deleted.append(file_id)
            return httpx.Response(200, json={"id": file_id, "object": "file", "deleted": True})

        return self._perform("delete", act, request)

    # --- batches ------------------------------------------------------------------------------

    def _create(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            params = json.loads(request.content)
            if params["input_file_id"] not in self.files:
                return _error(404, f"No such File object: {params['input_file_id']}")
            response = super(FakeBatchService, self)._create(request)
            batch = self.batches[response.json()["id"]]
            batch["metadata"] = params.get("metadata")
            batch["created_at"] = int(self.server_time)
            return httpx.Response(200, json=batch)

        return self._perform("create", act, request)

    def _retrieve(self, request: httpx.Request, batch_id: str) -> httpx.Response:
        if self.on_poll is not None:
            self.on_poll()  # a slow reply: time passes on the caller's clock
        return super()._retrieve(request, batch_id)

    def _list_batches(self, request: httpx.Request) -> httpx.Response:
        self.listed["batches"] += 1
        items = list(reversed(self.batches.values()))
        return httpx.Response(200, json=self._page(request, items))

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        if sum(self.listed.values()) > 50:
            raise AssertionError("the client keeps listing: a look-up that never ends")
        if self.ignores_paging:
            return {"object": "list", "data": items[: self.page_size or 20]}
        after = request.url.params.get("after")
        limit = self.page_size or int(request.url.params.get("limit", "20"))
        ids = [item["id"] for item in items]
        start = ids.index(after) + 1 if after in ids else 0
        chosen = items[start : start + limit]
        return {"object": "list", "data": chosen, "has_more": start + limit < len(items)}

    # --- what the tests look at -----------------------------------------------------------------

    def stored(self, purpose: str = "batch") -> list[str]:
        """The ids of the files still stored with ``purpose``."""
        return [f for f in self.files if self.file_json(f)["purpose"] == purpose]
