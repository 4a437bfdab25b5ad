"""`finetune-kit` commands for the job area (see ``_main.py`` for the conventions).

- ``train FILE --model M [--validation FILE] [--suffix S] [--epochs N] [--method M]
  [--tier T] [--yes] [--wait]``: validates, shows the cost estimate, asks before starting a
  paid job (refuses without ``--yes`` when stdin is not a terminal), creates the job;
  ``--wait`` then watches it. ``--tier`` (Azure OpenAI only) is checked against the endpoint
  and the model before anything is asked or sent.
- ``status JOB``: the job's state, its error if any, and its latest events.
- ``wait JOB [--timeout S]``: watch until the job ends and print the tuned model's name.
- ``cancel JOB``.

Exit codes: 0 success; 1 the job failed or was cancelled, the data has errors, the service
refused, or the user declined; 2 usage error, unreadable file, no confirmation possible or no
client configured; 3 ``wait`` timed out (the job keeps running); 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import openai

from .._core.client import resolve_client
from .._core.session import default_session, endpoint_of
from .._exceptions import (
    DatasetError,
    FinetuneKitError,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    TokenizerError,
)
from ..datasets._dataset import Dataset
from ..jobs._flows import check_tier
from ..jobs._job import Job, JobOptions
from ._common import caught_warnings, confirmed, fail, show_warnings

if TYPE_CHECKING:
    import argparse

__all__ = ["EXIT_TIMEOUT", "run_cancel", "run_status", "run_train", "run_wait"]

EXIT_TIMEOUT = 3
_EVENTS_SHOWN = 5


def _load(command: str, path: str, model: str) -> Dataset | int:
    """The validated dataset, or the exit code after saying what is wrong."""
    with caught_warnings() as caught:
        try:
            ds = Dataset.from_jsonl(path)
            report = ds.validate(model=model)
        except (DatasetError, TokenizerError) as exc:
            return fail(command, exc, 2)
    show_warnings(caught)
    if not report.ok:
        sys.stderr.write(f"{report}\n")
        return fail(command, f"{path} has errors; fix them and try again")
    return ds


def run_train(args: argparse.Namespace) -> int:
    """``finetune-kit train``: validate, show the cost, ask, start (and maybe watch)."""
    training = _load("train", args.file, args.model)
    if isinstance(training, int):
        return training
    validation: Dataset | None = None
    if args.validation:
        loaded = _load("train", args.validation, args.model)
        if isinstance(loaded, int):
            return loaded
        validation = loaded
    try:
        options = JobOptions(
            model=args.model,
            validation=validation,
            method=args.method,
            hyperparameters={"n_epochs": args.epochs} if args.epochs else None,
            suffix=args.suffix,
            tier=args.tier,
        )
        if options.tier is not None:
            # Off Azure, or a tier the model lacks there: say so before asking or sending.
            client = resolve_client(None)
            check_tier(options, endpoint_of(client, endpoint=default_session().endpoint))
    except ValueError as exc:  # e.g. a suffix the service would refuse: before asking
        return fail("train", exc, 2)
    except openai.OpenAIError as exc:  # no API key, bad configuration
        return fail("train", exc, 2)
    try:
        estimate = training.estimate_cost(model=args.model, n_epochs=args.epochs)
    except (DatasetError, TokenizerError, ValueError) as exc:
        return fail("train", exc, 2)
    sys.stdout.write(f"{args.file}: {estimate}\n")
    sys.stdout.flush()
    if not args.yes:
        refused = confirmed(
            "train",
            f"Start fine-tuning {args.model} on {args.file}?",
            charge="starting a paid job",
            go_ahead="start it",
            declined="not started",
        )
        if refused is not None:
            return refused
    try:
        with caught_warnings() as caught:
            job = Job.create_from(training, options)
    except (FinetuneKitError, openai.APIError) as exc:
        return fail("train", exc)
    except openai.OpenAIError as exc:  # no API key, bad configuration
        return fail("train", exc, 2)
    show_warnings(caught)
    sys.stdout.write(f"started {job.id} ({job.status})\n")
    sys.stdout.flush()
    if not args.wait:
        sys.stdout.write(f"watch it with: finetune-kit wait {job.id}\n")
        return 0
    return _watch(job, args)


def _watch(job: Job, args: argparse.Namespace) -> int:
    try:
        model = job.wait(
            timeout=args.timeout,
            poll_interval=args.poll_interval,
            progress=not args.no_progress,
        )
    except JobTimeoutError as exc:
        return fail("wait", exc, EXIT_TIMEOUT)
    except (JobFailedError, JobCancelledError) as exc:
        return fail("wait", exc)
    sys.stdout.write(f"{model.name}\n")
    return 0


def _get(command: str, job_id: str) -> Job | int:
    try:
        return Job.get(job_id)
    except openai.NotFoundError:
        return fail(command, f"no fine-tuning job {job_id!r}")
    except openai.APIError as exc:
        return fail(command, exc)
    except openai.OpenAIError as exc:
        return fail(command, exc, 2)


def run_wait(args: argparse.Namespace) -> int:
    """``finetune-kit wait``: watch a job until it ends."""
    job = _get("wait", args.job)
    return job if isinstance(job, int) else _watch(job, args)


def run_status(args: argparse.Namespace) -> int:
    """``finetune-kit status``: a job's state, error and latest events."""
    job = _get("status", args.job)
    if isinstance(job, int):
        return job
    try:
        events = job.events()[-_EVENTS_SHOWN:]
    except openai.APIError as exc:
        return fail("status", exc)
    lines = [f"{job.id}: {job.status}", f"  model:            {job.model}"]
    if job.fine_tuned_model:
        lines.append(f"  fine-tuned model: {job.fine_tuned_model}")
    if job.trained_tokens is not None:
        lines.append(f"  trained tokens:   {job.trained_tokens:,}")
    if job.error is not None:
        param = f" (param {job.error.param})" if job.error.param else ""
        lines.append(f"  error:            {job.error.code}: {job.error.message}{param}")
    if events:
        lines.append("  latest events:")
        lines += [f"    {e.time:%Y-%m-%d %H:%M:%S} {e.level:<5} {e.message}" for e in events]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    """``finetune-kit cancel``: ask the service to cancel a job."""
    job = _get("cancel", args.job)
    if isinstance(job, int):
        return job
    try:
        job.cancel()
    except openai.APIError as exc:
        return fail("cancel", exc)
    sys.stdout.write(f"{job.id}: {job.status}\n")
    return 0
