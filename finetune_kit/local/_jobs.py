"""Fine-tuning jobs: creation, listing, cancel/pause/resume, events, checkpoints, lifecycle.

Nothing runs in the background: each request first calls :meth:`Jobs.advance`, which moves
every unfinished job to where the clock says it is (a paused test clock freezes
everything; a restarted server resumes a running job exactly where the clock puts it).
Training happens once, when a job leaves ``validating_files``, *outside* the lock: the job
is claimed, trained by the request that found it due, then its results are recorded, while
other requests (retrieve, events, other jobs) are answered meanwhile. Per-step metrics and
per-epoch checkpoints are then *revealed* step by step as time passes. The claiming is
:class:`~._lifecycle.Lifecycle`'s, shared with batches.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
from typing import TYPE_CHECKING, Any, Final

from ..facts._jobs import STEP_METRICS
from ..facts._limits import MAX_METADATA_PAIRS, MAX_SUFFIX_CHARS
from ..facts._models import model_facts
from ._errors import bad_request, lookup
from ._inputs import method_of, result_csv, run_from_json, run_to_json
from ._lifecycle import Lifecycle
from ._persist import Deferred
from ._records import CheckpointRecord, EventRecord, JobRecord
from ._state import limit, page, rand
from ._training import Failure, Inputs, Trained, prepare

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._files import Files
    from ._models import Models
    from ._state import State
    from ._trainer_types import AnswerModel, TrainingRun

__all__ = ["Jobs"]

logger = logging.getLogger("finetune_kit")

_TERMINAL: Final = ("succeeded", "failed", "cancelled")
_KEEP_CHECKPOINTS: Final = 3
_OWNER: Final = "local"


#: Azure's training tiers as its ``trainingType`` field spells them, by lower-case name.
#: "developerTier" is how some of Microsoft's examples spell the Developer tier.
TRAINING_TYPES: Final = {
    "standard": "Standard",
    "globalstandard": "GlobalStandard",
    "developer": "Developer",
    "developertier": "Developer",
}


def _job_base(model: str) -> str:
    """The base a job trains on: ``ft:<base>:...`` or Azure's ``<base>.ft-...`` -> ``<base>``."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model.split(".ft-")[0]


def _training_type(body: dict[str, Any], *, azure: bool) -> str | None:
    """The Azure ``trainingType`` of a create request, checked (OpenAI does not know it)."""
    value = body.get("trainingType")
    if value is None:
        return None
    if not azure:
        raise bad_request(
            "Unrecognized request argument supplied: trainingType", param="trainingType"
        )
    canonical = TRAINING_TYPES.get(value.lower()) if isinstance(value, str) else None
    if canonical is None:
        raise bad_request(
            f"Invalid value for 'trainingType': {value!r}. Supported values are: "
            "'Standard', 'GlobalStandard' and 'Developer'.",
            param="trainingType",
            code="invalid_training_type",
        )
    return canonical


def _check_options(body: dict[str, Any]) -> None:
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > MAX_SUFFIX_CHARS):
        raise bad_request(
            f"Invalid 'suffix': at most {MAX_SUFFIX_CHARS} characters.", param="suffix"
        )
    metadata = body.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict)
        or len(metadata) > MAX_METADATA_PAIRS
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise bad_request(
            f"Invalid 'metadata': up to {MAX_METADATA_PAIRS} string keys with string values.",
            param="metadata",
        )
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise bad_request("Invalid 'seed': expected an integer.", param="seed")


class Jobs(Lifecycle[JobRecord, Inputs, Trained | Failure]):
    """The fine-tuning jobs API and the jobs' lifecycle (training is a job's slow work)."""

    KIND = "job"
    RESTING = (*_TERMINAL, "paused")

    def __init__(self, state: State, files: Files, models: Models) -> None:
        super().__init__(state, files, models)
        self.jobs = state.records("job", JobRecord.from_doc)
        self.events: dict[str, list[EventRecord]] = {}
        for event in state.records("event", EventRecord.from_doc).values():
            self.events.setdefault(event.job_id, []).append(event)
        self.checkpoints: dict[str, list[CheckpointRecord]] = {}
        for ckpt in state.records("checkpoint", CheckpointRecord.from_doc).values():
            self.checkpoints.setdefault(ckpt.job_id, []).append(ckpt)
        self._runs: dict[str, TrainingRun[AnswerModel]] = {}

    # ------------------------------------------------------------------------- the API

    def create(self, body: dict[str, Any], *, azure: bool = False) -> dict[str, Any]:
        """Create a fine-tuning job (validated, trained and revealed as the clock runs).

        ``azure``: the request came through Azure's paths, which take a ``trainingType``
        and name the tuned model Azure's way (``<base>.ft-<id>``).
        """
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("Missing required parameter: 'model'.", param="model")
        training_file = body.get("training_file")
        if not isinstance(training_file, str) or not training_file:
            raise bad_request("Missing required parameter: 'training_file'.", param="training_file")
        method = method_of(body)
        facts = model_facts(_job_base(model))
        if not facts.known or not self.models.exists(model):
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
        _check_options(body)
        training_type = _training_type(body, azure=azure)
        validation_file = body.get("validation_file")
        with self.s.lock:
            self._check_input(training_file, "training_file")
            if validation_file is not None:
                self._check_input(validation_file, "validation_file")
            now = self.s.now()
            seed = body.get("seed")
            job = JobRecord(
                id="ftjob-" + rand(24),
                created_at=int(now),
                model=model,
                method=method,
                seed=seed if seed is not None else self._default_seed(training_file, body),
                training_file=training_file,
                validation_file=validation_file,
                suffix=body.get("suffix"),
                metadata=body.get("metadata"),
                integrations=body.get("integrations") or None,
                hyperparameters=(
                    dict(method["supervised"]["hyperparameters"])
                    if method["type"] == "supervised"
                    else None
                ),
                phase_start=now,
                azure=azure,
                training_type=training_type,
            )
            self.jobs[job.id] = job
            self._save(job)
            self._event(job, now, f"Validating training file: {training_file}")
            self._event(job, now, f"Created fine-tuning job: {job.id}")
            self.s.flush()
            return job.to_api()

    def _default_seed(self, training_file: str, body: dict[str, Any]) -> int:
        """A seed from the training data and the request (the service picks a random one).

        Identical jobs then train identical models, so a test run (or a retried create that
        made a second job) gives the same results every time.
        """
        digest = hashlib.sha256(self.s.db.get_blob(training_file) or b"")
        options = {k: body.get(k) for k in ("model", "method", "hyperparameters", "suffix")}
        digest.update(json.dumps(options, sort_keys=True, default=str).encode())
        return int(digest.hexdigest()[:8], 16) % 2**31

    def _check_input(self, fid: str, param: str) -> None:
        record = self.files.files.get(fid)
        if record is None:
            raise bad_request(f"invalid {param}: {fid}", param=param, code="invalid_file")
        if record.purpose != "fine-tune":
            raise bad_request(
                f"File {fid} has purpose '{record.purpose}'; fine-tuning needs 'fine-tune'.",
                param=param,
                code="invalid_file_purpose",
            )

    def _job(self, jid: str) -> JobRecord:
        return lookup(self.jobs, "job", jid)

    def get(self, jid: str) -> dict[str, Any]:
        """A job as the API returns it."""
        with self.s.lock:
            return self._job(jid).to_api()

    def list(
        self, *, after: str | None, limit: Any, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        """Jobs, newest first, optionally only those whose metadata has every given pair.

        ``metadata={}`` (the query ``metadata=null``) selects jobs without metadata.
        """
        count = _limit(limit, 20, 100)
        with self.s.lock:
            items = []
            for job in reversed(self.jobs.values()):
                if metadata is not None:
                    if metadata == {} and job.metadata is not None:
                        continue
                    have = job.metadata or {}
                    if any(have.get(k) != v for k, v in metadata.items()):
                        continue
                items.append(job)
            return page(items, after, count)

    def cancel(self, jid: str) -> dict[str, Any]:
        """Cancel a job that has not finished."""
        return self._transition(jid, "cancel", ("validating_files", "queued", "running", "paused"))

    def pause(self, jid: str) -> dict[str, Any]:
        """Pause a running job (its progress is kept)."""
        return self._transition(jid, "pause", ("running",))

    def resume(self, jid: str) -> dict[str, Any]:
        """Resume a paused job: it goes back through ``queued``."""
        return self._transition(jid, "resume", ("paused",))

    def _transition(self, jid: str, action: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        with self.s.lock:
            job = self._job(jid)
            if job.status not in allowed:
                raise bad_request(
                    f"Job {jid} is {job.status}; it cannot {action} (only when "
                    f"{' or '.join(allowed)}).",
                    code="invalid_state",
                )
            now = self.s.now()
            if action == "cancel":
                job.status = "cancelled"
                job.finished_at = int(now)
                self._event(job, now, "Fine-tuning job cancelled")
            elif action == "pause":
                job.status = "paused"
                job.done = job.revealed
                self._event(job, now, "Fine-tuning job paused")
            else:
                job.status = "queued"
                job.phase_start = now
                self._event(job, now, "Fine-tuning job resumed")
            self._set_estimate(job)
            self._save(job)
            self.s.flush()
            return job.to_api()

    def list_events(self, jid: str, *, after: str | None, limit: Any) -> dict[str, Any]:
        """A job's events, newest first."""
        count = _limit(limit, 20, 10_000)
        with self.s.lock:
            self._job(jid)
            return page(list(reversed(self.events.get(jid, []))), after, count)

    def list_checkpoints(self, jid: str, *, after: str | None, limit: Any) -> dict[str, Any]:
        """A job's kept checkpoints, newest first."""
        count = _limit(limit, 10, 100)
        with self.s.lock:
            self._job(jid)
            return page(list(reversed(self.checkpoints.get(jid, []))), after, count)

    # ---------------------------------------------------------------------- bookkeeping

    def _save(self, job: JobRecord) -> None:
        self.s.stage("job", job.id, job.to_doc())

    def _event(
        self,
        job: JobRecord,
        at: float,
        message: str,
        *,
        level: str = "info",
        data: dict[str, Any] | None = None,
        kind: str = "message",
    ) -> None:
        event = EventRecord(
            id="ftevent-" + rand(24),
            job_id=job.id,
            created_at=int(at),
            level=level,
            message=message,
            data=data if data is not None else {},
            type=kind,
        )
        self.events.setdefault(job.id, []).append(event)
        self.s.stage("event", event.id, event.to_doc())

    # ------------------------------------------------------------------------ lifecycle

    # Lifecycle's steps: a job due for training hands out its inputs; training is the work.

    def _records(self) -> Iterable[JobRecord]:
        return self.jobs.values()

    def _move(self, job: JobRecord, now: float) -> tuple[Inputs, float] | None:
        due = job.phase_start + self.s.timing.validating
        if job.status == "validating_files" and now >= due:
            return self._inputs(job), due
        self._advance(job, now)
        return None

    def _work(self, job: JobRecord, inputs: Inputs, moved: Callable[[], bool]) -> Trained | Failure:
        try:
            # A job cancelled while it trains stops its trainer at the next step.
            return prepare(inputs, self.s.trainer, moved)
        except Exception:
            # A bug in one job must not make every later request fail.
            logger.exception("local backend: job %s failed internally", job.id)
            return Failure("internal_error", "The job failed internally.", None)

    def _break(self, job: JobRecord, now: float) -> None:
        self._fail(job, now, Failure("internal_error", "The job failed internally.", None))
        self._save(job)

    def _inputs(self, job: JobRecord) -> Inputs:
        get = self.s.db.get_blob
        return Inputs(
            base=_job_base(job.model),
            method=job.method,
            seed=job.seed,
            training_file=job.training_file,
            training=get(job.training_file),
            validation_file=job.validation_file,
            validation=get(job.validation_file) if job.validation_file else None,
        )

    def _finish(self, job: JobRecord, outcome: Trained | Failure, at: float) -> None:
        if isinstance(outcome, Failure):
            self._fail(job, at, outcome)
            self._save(job)
            return
        if outcome.note is not None:
            self._event(job, at, outcome.note, level="warn")
        if job.hyperparameters is not None:
            job.hyperparameters = dict(outcome.hyperparameters)
        job.method[job.method["type"]]["hyperparameters"] = dict(outcome.hyperparameters)
        total = len(outcome.run.steps)
        t = self.s.timing
        job.total = total
        job.step_seconds = min(t.running_max, max(t.running_min, total * t.running_per_step))
        job.step_seconds /= total
        job.trained_tokens = outcome.tokens
        self._runs[job.id] = outcome.run
        self.s.stage("run", job.id, Deferred(functools.partial(run_to_json, outcome.run)))
        job.status = "queued"
        job.phase_start = at
        self._event(job, at, "Files validated, moving job to queued state")
        self._set_estimate(job)
        self._save(job)

    def _advance(self, job: JobRecord, now: float) -> None:
        t = self.s.timing
        before = (job.status, job.revealed)
        if job.status == "queued" and now >= job.phase_start + t.queued:
            at = job.phase_start + t.queued
            job.status = "running"
            job.phase_start = at
            self._event(job, at, "Fine-tuning job started")
        if job.status == "running":
            self._reveal(job, now)
        if (job.status, job.revealed) != before:
            self._set_estimate(job)
            self._save(job)

    def _set_estimate(self, job: JobRecord) -> None:
        if job.status in self.RESTING or job.total is None:
            job.estimated_finish = None
            return
        remaining = (job.total - job.done) * job.step_seconds
        start = job.phase_start
        if job.status == "queued":
            start += self.s.timing.queued
        job.estimated_finish = math.ceil(start + remaining)

    def _run(self, jid: str) -> TrainingRun[AnswerModel]:
        run = self._runs.get(jid)
        if run is None:
            stored = dict(self.s.db.load("run")).get(jid)
            if stored is None:
                raise RuntimeError(f"training run of {jid} is missing")
            run = run_from_json(stored, self.s.trainer)
            self._runs[jid] = run
        return run

    def _reveal(self, job: JobRecord, now: float) -> None:
        run = self._run(job.id)
        total = len(run.steps)
        # The epsilon keeps float error from holding back a step that is exactly due.
        elapsed_steps = int((now - job.phase_start) / job.step_seconds + 1e-6)
        reached = min(total, job.done + elapsed_steps)
        for step in range(job.revealed + 1, reached + 1):
            at = job.phase_start + (step - job.done) * job.step_seconds
            metrics = run.steps[step - 1]
            data = {"total_steps": total, **metrics.to_json()}
            text = f"Step {step}/{total}: training loss={metrics.train_loss:.2f}"
            if metrics.valid_loss is not None:
                text += f", validation loss={metrics.valid_loss:.2f}"
            self._event(job, at, text, data=data, kind="metrics")
            if step in run.epoch_ends:
                self._checkpoint(job, run, step, at)
            job.revealed = step
        if reached >= total:
            self._succeed(job, run, job.phase_start + (total - job.done) * job.step_seconds)

    def _model_name(self, job: JobRecord) -> str:
        if job.azure:
            # Azure's form: "<base>.ft-<32 hex>", then "-<suffix>" (lower-case, like Azure).
            ident = hashlib.sha256(job.id.encode()).hexdigest()[:32]
            suffix = re.sub(r"[^0-9a-z_-]+", "-", (job.suffix or "").lower()).strip("-")
            return f"{_job_base(job.model)}.ft-{ident}" + (f"-{suffix}" if suffix else "")
        short = job.id.removeprefix("ftjob-")[:8]
        return f"ft:{_job_base(job.model)}:{_OWNER}:{job.suffix or ''}:{short}"

    def _checkpoint(
        self, job: JobRecord, run: TrainingRun[AnswerModel], step: int, at: float
    ) -> None:
        name = f"{self._model_name(job)}:ckpt-step-{step}"
        m = run.steps[step - 1]
        ckpt = CheckpointRecord(
            id="ftckpt_" + rand(24),
            job_id=job.id,
            created_at=int(at),
            model=name,
            step=step,
            metrics={"step": float(step), **{k: getattr(m, k) for k in STEP_METRICS}},
        )
        kept = self.checkpoints.setdefault(job.id, [])
        kept.append(ckpt)
        self.s.stage("checkpoint", ckpt.id, ckpt.to_doc())
        self.models.add(
            name, base=_job_base(job.model), job_id=job.id, weights=run.snapshots[step], at=at
        )
        while len(kept) > _KEEP_CHECKPOINTS:
            old = kept.pop(0)
            self.s.db.delete("checkpoint", old.id)
            self.models.drop(old.model)
        self._event(job, at, f"Checkpoint created at step {step}")

    def _succeed(self, job: JobRecord, run: TrainingRun[AnswerModel], at: float) -> None:
        name = self._model_name(job)
        self.models.add(name, base=_job_base(job.model), job_id=job.id, weights=run.model, at=at)
        self._event(job, at, f"New fine-tuned model created: {name}")
        result = self.files.add(
            filename="step_metrics.csv", purpose="fine-tune-results", data=result_csv(run.steps)
        )
        job.result_files = [result.id]
        job.fine_tuned_model = name
        job.status = "succeeded"
        job.finished_at = int(at)
        job.estimated_finish = None
        self._event(job, at, "The job has successfully completed")

    def _fail(self, job: JobRecord, at: float, failure: Failure) -> None:
        job.status = "failed"
        job.finished_at = int(at)
        job.estimated_finish = None
        job.error = {"code": failure.code, "message": failure.message, "param": failure.param}
        self._event(job, at, failure.message, level="error")


# The list methods' ``limit`` parameter shadows the helper's name inside them.
_limit = limit
