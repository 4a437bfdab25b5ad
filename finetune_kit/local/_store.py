"""The local backend's state and its lifecycles: files, uploads, jobs, models, batches.

Time is a clock the server injects (``time.time`` by default) divided into phases whose
lengths shrink with ``speed``. Nothing runs in the background: every request first calls
:meth:`Store.advance`, which moves each job and batch forward to what the clock says (so a
paused test clock freezes everything, and a restarted server resumes a running job exactly
where the clock puts it). Training itself happens once, when a job leaves
``validating_files``; the run's per-step metrics and per-epoch snapshots are then *revealed*
step by step as time passes, as events, checkpoints and finally the tuned model.

Every method takes the store's lock; responses are plain dicts in the service's JSON shape.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import string
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..facts._models import model_facts
from ..facts._tokens import base_model_name
from ._errors import ApiError, bad_request, not_found
from ._inputs import (
    BadData,
    batch_lines,
    method_hyperparameters,
    method_of,
    result_csv,
    run_from_json,
    run_to_json,
    training_examples,
    validate_file,
)
from ._persist import Persistence
from ._trainer import LinearModel, TrainingExample, TrainingRun, limit_examples, train

if TYPE_CHECKING:
    import os
    from collections.abc import Callable

__all__ = ["BASE_MODELS", "Store", "Timing", "is_reasoning_model"]

logger = logging.getLogger("finetune_kit")

#: Base models the backend lists and answers as (any gpt-*/o* name is accepted for chat).
BASE_MODELS: Final = (
    "gpt-4.1",
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "gpt-4o-mini-2024-07-18",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-0125",
    "o1",
    "o3",
    "o3-mini",
    "o4-mini",
    "o4-mini-2025-04-16",
)
_BASE_PREFIXES: Final = ("gpt-", "chatgpt-", "o1", "o3", "o4", "davinci-002", "babbage-002")
_REASONING_PREFIXES: Final = ("o1", "o3", "o4-mini")
_FILE_PURPOSES: Final = ("fine-tune", "batch", "assistants", "vision", "user_data", "evals")
_TERMINAL: Final = ("succeeded", "failed", "cancelled")
_BATCH_TERMINAL: Final = ("completed", "failed", "cancelled", "expired")
_KEEP_CHECKPOINTS: Final = 3
_OWNER: Final = "local"


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` (or the base of an ``ft:`` model) is named like a reasoning model."""
    base = base_model_name(model)
    return any(base == p or base.startswith(p + "-") for p in _REASONING_PREFIXES)


@dataclass(frozen=True)
class Timing:
    """How long each phase lasts at ``speed=1`` (seconds); divided by the server's speed."""

    validating: float = 0.5
    queued: float = 0.5
    running_min: float = 1.5
    running_per_step: float = 0.002
    running_max: float = 20.0
    batch_validating: float = 0.3
    batch_in_progress: float = 0.7
    batch_finalizing: float = 0.2

    def scaled(self, speed: float) -> Timing:
        """These timings at ``speed`` (2.0 = twice as fast)."""
        return Timing(**{k: v / speed for k, v in self.__dict__.items()})


_ALPHABET = string.ascii_letters + string.digits


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    """A cursor page over ``items`` (already in listing order), after the id ``after``."""
    start = 0
    if after:
        for i, item in enumerate(items):
            if item["id"] == after:
                start = i + 1
                break
    chosen = items[start : start + limit]
    return {
        "object": "list",
        "data": chosen,
        "has_more": start + limit < len(items),
        "first_id": chosen[0]["id"] if chosen else None,
        "last_id": chosen[-1]["id"] if chosen else None,
    }


def _limit(value: Any, default: int, maximum: int) -> int:
    if value is None:
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise bad_request(
            f"Invalid 'limit': expected an integer, got {value!r}.", param="limit"
        ) from None
    if not 1 <= limit <= maximum:
        raise bad_request(f"Invalid 'limit': must be between 1 and {maximum}.", param="limit")
    return limit


def default_epochs(n_examples: int) -> int:
    """The service's default epoch count for ``n_examples`` training examples."""
    if n_examples * 3 < 100:
        return min(25, 100 // max(1, n_examples))
    if n_examples * 3 > 25_000:
        return max(1, 25_000 // n_examples)
    return 3


class Store:
    """All state of one local backend; thread-safe."""

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None,
        clock: Callable[[], float],
        speed: float,
        timing: Timing | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.timing = (timing or Timing()).scaled(speed)
        self.db = Persistence(data_dir)
        self.files: dict[str, dict[str, Any]] = dict(self.db.load("file"))
        self.uploads: dict[str, dict[str, Any]] = dict(self.db.load("upload"))
        self.jobs: dict[str, dict[str, Any]] = dict(self.db.load("job"))
        self.models: dict[str, dict[str, Any]] = dict(self.db.load("model"))
        self.batches: dict[str, dict[str, Any]] = dict(self.db.load("batch"))
        self.events: dict[str, list[dict[str, Any]]] = {}
        for _, event in self.db.load("event"):
            self.events.setdefault(event["_job"], []).append(event)
        self.checkpoints: dict[str, list[dict[str, Any]]] = {}
        for _, ckpt in self.db.load("checkpoint"):
            self.checkpoints.setdefault(ckpt["fine_tuning_job_id"], []).append(ckpt)
        self._weights: dict[str, LinearModel] = {}
        self._runs: dict[str, TrainingRun] = {}
        self._pending: list[tuple[str, str, Any]] = []

    def close(self) -> None:
        """Release the database."""
        with self.lock:
            self.db.close()

    # ----------------------------------------------------------------- persistence helpers

    def _stage(self, kind: str, oid: str, doc: Any) -> None:
        self._pending.append((kind, oid, doc))

    def _flush(self) -> None:
        if self._pending:
            self.db.save_many(self._pending)
            self._pending = []

    def now(self) -> float:
        """The injected clock's time."""
        return self.clock()

    # ---------------------------------------------------------------------------- files

    def create_file(self, *, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        """Store an uploaded file (``purpose`` as the files API accepts it)."""
        if purpose not in _FILE_PURPOSES:
            raise bad_request(
                f"'{purpose}' is not one of {list(_FILE_PURPOSES)} - 'purpose'", param="purpose"
            )
        return self._add_file(filename=filename, purpose=purpose, data=data)

    def _add_file(self, *, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        with self.lock:
            fid = "file-" + _rand(24)
            meta = {
                "id": fid,
                "object": "file",
                "bytes": len(data),
                "created_at": int(self.now()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
                "status_details": None,
                "expires_at": None,
            }
            self.db.put_blob(fid, data)
            self.files[fid] = meta
            self.db.save("file", fid, meta)
            return dict(meta)

    def get_file(self, fid: str) -> dict[str, Any]:
        """A file's metadata (404 when unknown)."""
        with self.lock:
            meta = self.files.get(fid)
            if meta is None:
                raise not_found("File", fid, param="file_id")
            return dict(meta)

    def list_files(
        self, *, purpose: str | None, after: str | None, limit: Any, order: str | None
    ) -> dict[str, Any]:
        """Files, newest first unless ``order=asc``."""
        with self.lock:
            items = [dict(f) for f in self.files.values() if purpose in (None, f["purpose"])]
            if order not in (None, "asc", "desc"):
                raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", param="order")
            if order != "asc":
                items.reverse()
            return _page(items, after, _limit(limit, 10_000, 10_000))

    def file_content(self, fid: str) -> bytes:
        """A file's bytes (404 when unknown)."""
        with self.lock:
            self.get_file(fid)
            data = self.db.get_blob(fid)
            if data is None:
                raise not_found("File", fid, param="file_id")
            return data

    def delete_file(self, fid: str) -> dict[str, Any]:
        """Delete a file and its content."""
        with self.lock:
            self.get_file(fid)
            del self.files[fid]
            self.db.delete("file", fid)
            self.db.delete_blob(fid)
            return {"id": fid, "object": "file", "deleted": True}

    # -------------------------------------------------------------------------- uploads

    def create_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a multi-part upload."""
        for key in ("bytes", "filename", "mime_type", "purpose"):
            if key not in body:
                raise bad_request(f"Missing required parameter: '{key}'.", param=key)
        size = body["bytes"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request("Invalid 'bytes': expected a non-negative integer.", param="bytes")
        if body["purpose"] not in _FILE_PURPOSES:
            raise bad_request(f"Invalid 'purpose': {body['purpose']!r}.", param="purpose")
        with self.lock:
            now = int(self.now())
            uid = "upload_" + _rand(24)
            upload = {
                "id": uid,
                "object": "upload",
                "bytes": size,
                "created_at": now,
                "expires_at": now + 3600,
                "filename": str(body["filename"]),
                "purpose": body["purpose"],
                "status": "pending",
                "file": None,
                "_parts": [],
            }
            self.uploads[uid] = upload
            self.db.save("upload", uid, upload)
            return _public(upload)

    def _pending_upload(self, uid: str) -> dict[str, Any]:
        upload = self.uploads.get(uid)
        if upload is None:
            raise not_found("Upload", uid, param="upload_id")
        if upload["status"] != "pending":
            raise bad_request(
                f"Upload {uid} is already {upload['status']}; it no longer accepts changes."
            )
        return upload

    def add_upload_part(self, uid: str, data: bytes) -> dict[str, Any]:
        """Add one part (its bytes) to a pending upload."""
        with self.lock:
            upload = self._pending_upload(uid)
            pid = "part_" + _rand(24)
            self.db.put_blob(pid, data)
            upload["_parts"].append(pid)
            self.db.save("upload", uid, upload)
            return {
                "id": pid,
                "object": "upload.part",
                "created_at": int(self.now()),
                "upload_id": uid,
            }

    def complete_upload(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        """Join the listed parts, in order, into a file."""
        part_ids = body.get("part_ids")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise bad_request("Missing or invalid 'part_ids'.", param="part_ids")
        with self.lock:
            upload = self._pending_upload(uid)
            unknown = [p for p in part_ids if p not in upload["_parts"]]
            if unknown:
                raise bad_request(f"Part {unknown[0]} does not belong to {uid}.", param="part_ids")
            data = b"".join(self.db.get_blob(p) or b"" for p in part_ids)
            if len(data) != upload["bytes"]:
                raise bad_request(
                    f"The parts add up to {len(data)} bytes but the upload was created with "
                    f"{upload['bytes']} bytes.",
                    param="part_ids",
                )
            md5 = body.get("md5")
            if isinstance(md5, str) and md5 and md5 != hashlib.md5(data).hexdigest():
                raise bad_request("The md5 checksum does not match the parts.", param="md5")
            meta = self._add_file(filename=upload["filename"], purpose=upload["purpose"], data=data)
            for pid in upload["_parts"]:
                self.db.delete_blob(pid)
            upload["status"] = "completed"
            upload["file"] = meta
            self.db.save("upload", uid, upload)
            return _public(upload)

    def cancel_upload(self, uid: str) -> dict[str, Any]:
        """Cancel a pending upload."""
        with self.lock:
            upload = self._pending_upload(uid)
            for pid in upload["_parts"]:
                self.db.delete_blob(pid)
            upload["status"] = "cancelled"
            self.db.save("upload", uid, upload)
            return _public(upload)

    # ----------------------------------------------------------------------------- jobs

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a fine-tuning job (validated, trained and revealed as the clock runs)."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("Missing required parameter: 'model'.", param="model")
        training_file = body.get("training_file")
        if not isinstance(training_file, str) or not training_file:
            raise bad_request("Missing required parameter: 'training_file'.", param="training_file")
        method = method_of(body)
        base = _job_base(model)
        facts = model_facts(base)
        if not facts.known or not self._is_model(model):
            raise bad_request(
                f"Model {model} is not available for fine-tuning or does not exist.",
                param="model",
                code="model_not_available",
            )
        if method["type"] not in facts.methods:
            raise bad_request(
                f"Fine-tuning method '{method['type']}' is not supported for model {model}.",
                param="method",
                code="invalid_method",
            )
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise bad_request("Invalid 'suffix': at most 64 characters.", param="suffix")
        metadata = body.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or len(metadata) > 16
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise bad_request(
                "Invalid 'metadata': up to 16 string keys with string values.", param="metadata"
            )
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise bad_request("Invalid 'seed': expected an integer.", param="seed")
        validation_file = body.get("validation_file")
        with self.lock:
            self._check_training_input(training_file, "training_file")
            if validation_file is not None:
                self._check_training_input(validation_file, "validation_file")
            now = self.now()
            jid = "ftjob-" + _rand(24)
            job: dict[str, Any] = {
                "id": jid,
                "object": "fine_tuning.job",
                "created_at": int(now),
                "error": None,
                "fine_tuned_model": None,
                "finished_at": None,
                "hyperparameters": (
                    dict(method["supervised"]["hyperparameters"])
                    if method["type"] == "supervised"
                    else None
                ),
                "model": model,
                "organization_id": "org-local",
                "result_files": [],
                "seed": seed if seed is not None else self._default_seed(training_file, body),
                "status": "validating_files",
                "trained_tokens": None,
                "training_file": training_file,
                "validation_file": validation_file,
                "estimated_finish": None,
                "integrations": body.get("integrations") or None,
                "metadata": metadata,
                "method": method,
                "user_provided_suffix": suffix,
                "_x": {"phase_start": now, "suffix": suffix or "", "revealed": 0, "done": 0},
            }
            self.jobs[jid] = job
            self._stage("job", jid, job)
            self._event(job, now, f"Validating training file: {training_file}")
            self._event(job, now, f"Created fine-tuning job: {jid}")
            self._flush()
            return _public(job)

    def _default_seed(self, training_file: str, body: dict[str, Any]) -> int:
        """A seed from the training data and the request (the service picks a random one).

        Identical jobs then train identical models, so a test run (or a retried create that
        made a second job) gives the same results every time.
        """
        digest = hashlib.sha256(self.db.get_blob(training_file) or b"")
        options = {k: body.get(k) for k in ("model", "method", "hyperparameters", "suffix")}
        digest.update(json.dumps(options, sort_keys=True, default=str).encode())
        return int(digest.hexdigest()[:8], 16) % 2**31

    def _is_model(self, model: str) -> bool:
        return model in self.models or _looks_like_base(model)

    def _check_training_input(self, fid: str, param: str) -> None:
        meta = self.files.get(fid)
        if meta is None:
            raise bad_request(f"invalid {param}: {fid}", param=param, code="invalid_file")
        if meta["purpose"] != "fine-tune":
            raise bad_request(
                f"File {fid} has purpose '{meta['purpose']}'; fine-tuning needs 'fine-tune'.",
                param=param,
                code="invalid_file_purpose",
            )

    def get_job(self, jid: str) -> dict[str, Any]:
        """A job as the API returns it."""
        with self.lock:
            return _public(self._job(jid))

    def _job(self, jid: str) -> dict[str, Any]:
        job = self.jobs.get(jid)
        if job is None:
            raise ApiError(
                404,
                f"Could not find fine-tuning job {jid}.",
                param="fine_tuning_job_id",
                code="fine_tune_not_found",
            )
        return job

    def list_jobs(
        self, *, after: str | None, limit: Any, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        """Jobs, newest first, optionally only those whose metadata has every given pair."""
        with self.lock:
            items = []
            for job in reversed(self.jobs.values()):
                if metadata is not None:
                    have = job.get("metadata") or {}
                    if metadata == {} and job.get("metadata") is not None:
                        continue
                    if any(have.get(k) != v for k, v in metadata.items()):
                        continue
                items.append(_public(job))
            return _page(items, after, _limit(limit, 20, 100))

    def cancel_job(self, jid: str) -> dict[str, Any]:
        """Cancel a job that has not finished."""
        return self._transition(jid, "cancel", ("validating_files", "queued", "running", "paused"))

    def pause_job(self, jid: str) -> dict[str, Any]:
        """Pause a running job (its progress is kept)."""
        return self._transition(jid, "pause", ("running",))

    def resume_job(self, jid: str) -> dict[str, Any]:
        """Resume a paused job: it goes back through ``queued``."""
        return self._transition(jid, "resume", ("paused",))

    def _transition(self, jid: str, action: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        with self.lock:
            job = self._job(jid)
            if job["status"] not in allowed:
                raise bad_request(
                    f"Job {jid} is {job['status']}; it cannot {action} (only when "
                    f"{' or '.join(allowed)}).",
                    code="invalid_state",
                )
            now = self.now()
            x = job["_x"]
            if action == "cancel":
                job["status"] = "cancelled"
                job["finished_at"] = int(now)
                self._event(job, now, "Fine-tuning job cancelled")
            elif action == "pause":
                job["status"] = "paused"
                x["done"] = x["revealed"]
                self._event(job, now, "Fine-tuning job paused")
            else:
                job["status"] = "queued"
                x["phase_start"] = now
                self._event(job, now, "Fine-tuning job resumed")
            self._set_estimate(job)
            self._stage("job", jid, job)
            self._flush()
            return _public(job)

    def list_events(self, jid: str, *, after: str | None, limit: Any) -> dict[str, Any]:
        """A job's events, newest first."""
        with self.lock:
            self._job(jid)
            items = [_public(e) for e in reversed(self.events.get(jid, []))]
            return _page(items, after, _limit(limit, 20, 10_000))

    def list_checkpoints(self, jid: str, *, after: str | None, limit: Any) -> dict[str, Any]:
        """A job's kept checkpoints, newest first."""
        with self.lock:
            self._job(jid)
            items = [dict(c) for c in reversed(self.checkpoints.get(jid, []))]
            return _page(items, after, _limit(limit, 10, 100))

    def _event(
        self,
        job: dict[str, Any],
        at: float,
        message: str,
        *,
        level: str = "info",
        data: dict[str, Any] | None = None,
        kind: str = "message",
    ) -> None:
        eid = "ftevent-" + _rand(24)
        event = {
            "id": eid,
            "object": "fine_tuning.job.event",
            "created_at": int(at),
            "level": level,
            "message": message,
            "data": data if data is not None else {},
            "type": kind,
            "_job": job["id"],
        }
        self.events.setdefault(job["id"], []).append(event)
        self._stage("event", eid, event)

    # ------------------------------------------------------------------- job lifecycle

    def advance(self) -> None:
        """Move every unfinished job and batch to where the clock says it is now."""
        with self.lock:
            now = self.now()
            for job in list(self.jobs.values()):
                if job["status"] not in _TERMINAL and job["status"] != "paused":
                    try:
                        self._advance_job(job, now)
                    except Exception:
                        # A bug in one job must not make every later request fail.
                        logger.exception("local backend: job %s failed internally", job["id"])
                        self._fail(job, now, "internal_error", "The job failed internally.", None)
                        self._stage("job", job["id"], job)
            for batch in list(self.batches.values()):
                if batch["status"] not in _BATCH_TERMINAL:
                    try:
                        self._advance_batch(batch, now)
                    except Exception:
                        logger.exception("local backend: batch %s failed internally", batch["id"])
                        batch["status"] = "failed"
                        batch["failed_at"] = int(now)
                        self._stage("batch", batch["id"], batch)
            self._flush()

    def _advance_job(self, job: dict[str, Any], now: float) -> None:
        x = job["_x"]
        t = self.timing
        before = (job["status"], x["revealed"])
        if job["status"] == "validating_files" and now >= x["phase_start"] + t.validating:
            at = x["phase_start"] + t.validating
            self._validate_and_train(job, at)
            if job["status"] == "failed":
                self._stage("job", job["id"], job)
                return
            job["status"] = "queued"
            x["phase_start"] = at
            self._event(job, at, "Files validated, moving job to queued state")
        if job["status"] == "queued" and now >= x["phase_start"] + t.queued:
            at = x["phase_start"] + t.queued
            job["status"] = "running"
            x["phase_start"] = at
            self._event(job, at, "Fine-tuning job started")
        if job["status"] == "running":
            self._reveal(job, now)
        if (job["status"], x["revealed"]) != before:
            self._set_estimate(job)
            self._stage("job", job["id"], job)

    def _set_estimate(self, job: dict[str, Any]) -> None:
        x = job["_x"]
        if job["status"] in _TERMINAL or job["status"] == "paused" or "total" not in x:
            job["estimated_finish"] = None
            return
        remaining = (x["total"] - x["done"]) * x["step_seconds"]
        start = x["phase_start"]
        if job["status"] == "queued":
            start += self.timing.queued
        job["estimated_finish"] = math.ceil(start + remaining)

    def _reveal(self, job: dict[str, Any], now: float) -> None:
        x = job["_x"]
        run = self._run(job["id"])
        total = x["total"]
        # The epsilon keeps float error from holding back a step that is exactly due.
        elapsed_steps = int((now - x["phase_start"]) / x["step_seconds"] + 1e-6)
        reached = min(total, x["done"] + elapsed_steps)
        for step in range(x["revealed"] + 1, reached + 1):
            at = x["phase_start"] + (step - x["done"]) * x["step_seconds"]
            metrics = run.steps[step - 1]
            data = {"total_steps": total, **metrics.to_json()}
            text = f"Step {step}/{total}: training loss={metrics.train_loss:.2f}"
            if metrics.valid_loss is not None:
                text += f", validation loss={metrics.valid_loss:.2f}"
            self._event(job, at, text, data=data, kind="metrics")
            if step in run.epoch_ends:
                self._checkpoint(job, run, step, at)
            x["revealed"] = step
        if reached >= total:
            at = x["phase_start"] + (total - x["done"]) * x["step_seconds"]
            self._succeed(job, run, at)

    def _model_name(self, job: dict[str, Any]) -> str:
        short = job["id"].removeprefix("ftjob-")[:8]
        return f"ft:{_job_base(job['model'])}:{_OWNER}:{job['_x']['suffix']}:{short}"

    def _checkpoint(self, job: dict[str, Any], run: TrainingRun, step: int, at: float) -> None:
        name = f"{self._model_name(job)}:ckpt-step-{step}"
        metrics = run.steps[step - 1]
        ckpt = {
            "id": "ftckpt_" + _rand(24),
            "object": "fine_tuning.job.checkpoint",
            "created_at": int(at),
            "fine_tuned_model_checkpoint": name,
            "fine_tuning_job_id": job["id"],
            "metrics": {
                "step": float(step),
                "train_loss": metrics.train_loss,
                "train_mean_token_accuracy": metrics.train_mean_token_accuracy,
                "valid_loss": metrics.valid_loss,
                "valid_mean_token_accuracy": metrics.valid_mean_token_accuracy,
                "full_valid_loss": metrics.full_valid_loss,
                "full_valid_mean_token_accuracy": metrics.full_valid_mean_token_accuracy,
            },
            "step_number": step,
        }
        kept = self.checkpoints.setdefault(job["id"], [])
        kept.append(ckpt)
        self._stage("checkpoint", ckpt["id"], ckpt)
        self._add_model(name, job, run.snapshots[step], at)
        while len(kept) > _KEEP_CHECKPOINTS:
            old = kept.pop(0)
            self.db.delete("checkpoint", old["id"])
            self._drop_model(old["fine_tuned_model_checkpoint"])
        self._event(job, at, f"Checkpoint created at step {step}")

    def _add_model(self, name: str, job: dict[str, Any], weights: LinearModel, at: float) -> None:
        model = {
            "id": name,
            "object": "model",
            "created": int(at),
            "owned_by": _OWNER,
            "_base": job["model"],
            "_job": job["id"],
        }
        self.models[name] = model
        self._weights[name] = weights
        self._stage("model", name, model)
        self._stage("weights", name, weights.to_json())

    def _drop_model(self, name: str) -> None:
        self.models.pop(name, None)
        self._weights.pop(name, None)
        self.db.delete("model", name)
        self.db.delete("weights", name)

    def _succeed(self, job: dict[str, Any], run: TrainingRun, at: float) -> None:
        name = self._model_name(job)
        self._add_model(name, job, run.model, at)
        self._event(job, at, f"New fine-tuned model created: {name}")
        result = self._add_file(
            filename="step_metrics.csv", purpose="fine-tune-results", data=result_csv(run.steps)
        )
        job["result_files"] = [result["id"]]
        job["fine_tuned_model"] = name
        job["status"] = "succeeded"
        job["finished_at"] = int(at)
        job["estimated_finish"] = None
        self._event(job, at, "The job has successfully completed")

    def _fail(
        self, job: dict[str, Any], at: float, code: str, message: str, param: str | None
    ) -> None:
        job["status"] = "failed"
        job["finished_at"] = int(at)
        job["estimated_finish"] = None
        job["error"] = {"code": code, "message": message, "param": param}
        self._event(job, at, message, level="error")

    def _run(self, jid: str) -> TrainingRun:
        run = self._runs.get(jid)
        if run is None:
            stored = dict(self.db.load("run")).get(jid)
            if stored is None:
                raise RuntimeError(f"training run of {jid} is missing")
            run = run_from_json(stored)
            self._runs[jid] = run
        return run

    def _validate_and_train(self, job: dict[str, Any], at: float) -> None:
        base = _job_base(job["model"])
        method = job["method"]
        inputs: dict[str, list[TrainingExample]] = {}
        tokens = 0
        for param in ("training_file", "validation_file"):
            fid = job[param]
            if fid is None:
                continue
            data = self.db.get_blob(fid)
            if data is None:
                self._fail(job, at, f"invalid_{param}", f"File {fid} no longer exists.", param)
                return
            # The service accepts validation files of any size; the 10-example minimum is
            # for training files.
            ignore = ("too_few_examples",) if param == "validation_file" else ()
            problem = validate_file(data, base, ignore=ignore)
            if problem is None:
                try:
                    examples, n_tokens = training_examples(data, method, base)
                except BadData as exc:
                    problem = (exc.line, str(exc))
            if problem is not None:
                kind = "training" if param == "training_file" else "validation"
                line, text = problem
                self._fail(
                    job,
                    at,
                    f"invalid_{param}",
                    f"The job failed due to an invalid {kind} file. Line {line}: {text}",
                    param,
                )
                return
            inputs[param] = examples
            if param == "training_file":
                tokens = n_tokens
        train_set = inputs["training_file"]
        hyper = method_hyperparameters(method)
        n_epochs = hyper.get("n_epochs", "auto")
        epochs = default_epochs(len(train_set)) if n_epochs == "auto" else int(n_epochs)
        size = hyper.get("batch_size", "auto")
        batch = max(1, min(256, math.ceil(len(train_set) * 0.002))) if size == "auto" else size
        lr_mult = hyper.get("learning_rate_multiplier", "auto")
        lr = 1.0 if lr_mult == "auto" else float(lr_mult)
        learned, note = limit_examples(train_set, seed=job["seed"])
        if note is not None:
            self._event(job, at, note, level="warn")
        run = train(
            learned,
            validation=inputs.get("validation_file", []),
            n_epochs=epochs,
            batch_size=int(batch),
            learning_rate_multiplier=lr,
            seed=job["seed"],
        )
        resolved = {"batch_size": int(batch), "learning_rate_multiplier": lr, "n_epochs": epochs}
        hyper.update(resolved)
        if job["hyperparameters"] is not None:
            job["hyperparameters"] = dict(hyper)
        total = len(run.steps)
        x = job["_x"]
        t = self.timing
        x["total"] = total
        x["step_seconds"] = min(t.running_max, max(t.running_min, total * t.running_per_step))
        x["step_seconds"] /= total
        job["trained_tokens"] = tokens * epochs
        self._runs[job["id"]] = run
        self._stage("run", job["id"], run_to_json(run))

    # --------------------------------------------------------------------------- models

    def list_models(self) -> dict[str, Any]:
        """Base models, then tuned models and checkpoints."""
        with self.lock:
            data = [self._base_model(name) for name in BASE_MODELS]
            data += [self._model_doc(m) for m in self.models.values()]
            return {"object": "list", "data": data}

    def _base_model(self, name: str) -> dict[str, Any]:
        facts = model_facts(name)
        shutdown = facts.shutdown_date.isoformat() if facts.shutdown_date else None
        return {
            "id": name,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "system",
            "shutdown_date": shutdown,
        }

    def _model_doc(self, model: dict[str, Any]) -> dict[str, Any]:
        facts = model_facts(model["_base"])
        doc = _public(model)
        doc["shutdown_date"] = facts.shutdown_date.isoformat() if facts.shutdown_date else None
        return doc

    def get_model(self, name: str) -> dict[str, Any]:
        """One model (base or tuned)."""
        with self.lock:
            model = self.models.get(name)
            if model is not None:
                return self._model_doc(model)
            if _looks_like_base(name):
                return self._base_model(name)
            raise _model_not_found(name)

    def delete_model(self, name: str) -> dict[str, Any]:
        """Delete a tuned model (base models cannot be deleted)."""
        with self.lock:
            if name not in self.models:
                if _looks_like_base(name):
                    raise ApiError(
                        403,
                        f"You do not have permission to delete the model {name}.",
                        type="invalid_request_error",
                        code="model_not_deletable",
                    )
                raise _model_not_found(name)
            self._drop_model(name)
            return {"id": name, "object": "model", "deleted": True}

    def resolve_model(self, name: str) -> tuple[str, LinearModel | None]:
        """``(name, trained weights or None for a base model)``; 404 for unknown models."""
        with self.lock:
            model = self.models.get(name)
            if model is None:
                if _looks_like_base(name):
                    return name, None
                raise _model_not_found(name)
            weights = self._weights.get(name)
            if weights is None:
                stored = dict(self.db.load("weights")).get(name)
                if stored is None:
                    raise _model_not_found(name)
                weights = LinearModel.from_json(stored)
                self._weights[name] = weights
            return name, weights

    # -------------------------------------------------------------------------- batches

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a batch over ``/v1/chat/completions``."""
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str):
            raise bad_request("Missing required parameter: 'input_file_id'.", param="input_file_id")
        endpoint = body.get("endpoint")
        if endpoint != "/v1/chat/completions":
            raise bad_request(
                f"Unsupported endpoint {endpoint!r}: the local backend batches "
                "'/v1/chat/completions' only.",
                param="endpoint",
            )
        window = body.get("completion_window", "24h")
        if window != "24h":
            raise bad_request("Invalid 'completion_window': only '24h'.", param="completion_window")
        with self.lock:
            meta = self.files.get(input_file_id)
            if meta is None:
                raise not_found("File", input_file_id, param="input_file_id")
            if meta["purpose"] != "batch":
                raise bad_request(
                    f"File {input_file_id} has purpose '{meta['purpose']}', not 'batch'.",
                    param="input_file_id",
                )
            now = self.now()
            bid = "batch_" + _rand(24)
            batch = {
                "id": bid,
                "object": "batch",
                "endpoint": endpoint,
                "errors": None,
                "input_file_id": input_file_id,
                "completion_window": window,
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(now),
                "in_progress_at": None,
                "expires_at": int(now) + 86_400,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
                "_x": {"phase_start": now},
            }
            self.batches[bid] = batch
            self.db.save("batch", bid, batch)
            return _public(batch)

    def get_batch(self, bid: str) -> dict[str, Any]:
        """One batch."""
        with self.lock:
            return _public(self._batch(bid))

    def _batch(self, bid: str) -> dict[str, Any]:
        batch = self.batches.get(bid)
        if batch is None:
            raise not_found("Batch", bid, param="batch_id")
        return batch

    def list_batches(self, *, after: str | None, limit: Any) -> dict[str, Any]:
        """Batches, newest first."""
        with self.lock:
            items = [_public(b) for b in reversed(self.batches.values())]
            return _page(items, after, _limit(limit, 20, 100))

    def cancel_batch(self, bid: str) -> dict[str, Any]:
        """Cancel a batch that has not finished."""
        with self.lock:
            batch = self._batch(bid)
            if batch["status"] in _BATCH_TERMINAL:
                raise bad_request(f"Batch {bid} is already {batch['status']}.")
            now = int(self.now())
            batch["cancelling_at"] = now
            batch["cancelled_at"] = now
            batch["status"] = "cancelled"
            self.db.save("batch", bid, batch)
            return _public(batch)

    def _advance_batch(self, batch: dict[str, Any], now: float) -> None:
        from ._completions import create_chat_completion

        x = batch["_x"]
        t = self.timing
        if batch["status"] == "validating" and now >= x["phase_start"] + t.batch_validating:
            at = x["phase_start"] + t.batch_validating
            data = self.db.get_blob(batch["input_file_id"]) or b""
            lines, errors = batch_lines(data)
            if errors:
                batch["status"] = "failed"
                batch["failed_at"] = int(at)
                batch["errors"] = {"object": "list", "data": errors}
            else:
                batch["status"] = "in_progress"
                batch["in_progress_at"] = int(at)
                batch["request_counts"]["total"] = len(lines)
                x["phase_start"] = at
            self._stage("batch", batch["id"], batch)
        if batch["status"] == "in_progress" and now >= x["phase_start"] + t.batch_in_progress:
            at = x["phase_start"] + t.batch_in_progress
            data = self.db.get_blob(batch["input_file_id"]) or b""
            lines, _ = batch_lines(data)
            outputs: list[str] = []
            failures: list[str] = []
            for line in lines:
                rid = "req_" + secrets.token_hex(16)
                try:
                    if line.get("url") != "/v1/chat/completions":
                        raise bad_request(f"Unsupported url {line.get('url')!r}.", param="url")
                    body = line.get("body")
                    if not isinstance(body, dict):
                        raise bad_request("Missing or invalid 'body'.", param="body")
                    response = create_chat_completion(self, body)
                except ApiError as exc:
                    failures.append(
                        json.dumps(
                            {
                                "id": "batch_req_" + _rand(24),
                                "custom_id": line.get("custom_id"),
                                "response": {
                                    "status_code": exc.status,
                                    "request_id": rid,
                                    "body": exc.body(),
                                },
                                "error": {"code": exc.code or exc.type, "message": exc.message},
                            }
                        )
                    )
                    continue
                outputs.append(
                    json.dumps(
                        {
                            "id": "batch_req_" + _rand(24),
                            "custom_id": line.get("custom_id"),
                            "response": {"status_code": 200, "request_id": rid, "body": response},
                            "error": None,
                        }
                    )
                )
            batch["request_counts"]["completed"] = len(outputs)
            batch["request_counts"]["failed"] = len(failures)
            if outputs:
                out = self._add_file(
                    filename=f"{batch['id']}_output.jsonl",
                    purpose="batch_output",
                    data=("\n".join(outputs) + "\n").encode(),
                )
                batch["output_file_id"] = out["id"]
            if failures:
                err = self._add_file(
                    filename=f"{batch['id']}_error.jsonl",
                    purpose="batch_output",
                    data=("\n".join(failures) + "\n").encode(),
                )
                batch["error_file_id"] = err["id"]
            batch["status"] = "finalizing"
            batch["finalizing_at"] = int(at)
            x["phase_start"] = at
            self._stage("batch", batch["id"], batch)
        if batch["status"] == "finalizing" and now >= x["phase_start"] + t.batch_finalizing:
            batch["status"] = "completed"
            batch["completed_at"] = int(x["phase_start"] + t.batch_finalizing)
            self._stage("batch", batch["id"], batch)


# ------------------------------------------------------------------------------ helpers


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    """The API view of a stored document: private ``_fields`` removed."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _looks_like_base(name: str) -> bool:
    return not name.startswith("ft:") and name.lower().startswith(_BASE_PREFIXES)


def _job_base(model: str) -> str:
    """The base a job trains on: ``ft:<base>:...`` -> ``<base>``."""
    return model.split(":")[1] if model.startswith("ft:") else model


def _model_not_found(name: str) -> ApiError:
    return ApiError(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )
