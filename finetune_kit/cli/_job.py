"""`finetune-kit` commands for the job area (see ``_cli.py`` for the conventions).

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
import warnings
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
from ..jobs._options import TIERS
from ._ask import ask

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]

EXIT_TIMEOUT = 3
_EVENTS_SHOWN = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's commands to the ``finetune-kit`` parser."""
    train = sub.add_parser(
        "train",
        help="validate a JSONL file, show the cost, and start a fine-tuning job",
        description=(
            "Validate FILE, show the cost estimate, ask for confirmation (or pass --yes), upload "
            "it (reusing an identical earlier upload) and start a fine-tuning job. The client "
            "comes from the OPENAI_* environment (OPENAI_API_KEY, OPENAI_BASE_URL)."
        ),
    )
    train.add_argument("file", metavar="FILE", help="the JSONL training file")
    train.add_argument("--model", "-m", required=True, help="the model to fine-tune")
    train.add_argument("--validation", metavar="FILE", help="a JSONL validation file")
    train.add_argument("--suffix", help="added to the fine-tuned model's name")
    train.add_argument("--epochs", type=_positive_int, metavar="N", help="training epochs")
    train.add_argument(
        "--method", choices=["supervised", "dpo"], default="supervised", help="training method"
    )
    train.add_argument(
        "--tier",
        choices=TIERS,
        help="Azure OpenAI training tier (sent as trainingType; Azure endpoints only)",
    )
    train.add_argument("--yes", "-y", action="store_true", help="start without asking")
    train.add_argument("--wait", action="store_true", help="watch the job until it ends")
    _add_wait_options(train)
    train.set_defaults(handler=_train)

    status = sub.add_parser("status", help="show a fine-tuning job's state and latest events")
    status.add_argument("job", metavar="JOB", help="the job id (ftjob-...)")
    status.set_defaults(handler=_status)

    wait = sub.add_parser(
        "wait",
        help="watch a fine-tuning job until it ends",
        description=(
            "Watch JOB until it ends and print the tuned model's name. Exit code: 0 succeeded, "
            "1 failed or cancelled, 3 timed out (the job keeps running)."
        ),
    )
    wait.add_argument("job", metavar="JOB", help="the job id (ftjob-...)")
    _add_wait_options(wait)
    wait.set_defaults(handler=_wait)

    cancel = sub.add_parser("cancel", help="cancel a fine-tuning job")
    cancel.add_argument("job", metavar="JOB", help="the job id (ftjob-...)")
    cancel.set_defaults(handler=_cancel)


def _positive_int(text: str) -> int:
    import argparse

    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _positive_float(text: str) -> float:
    import argparse
    import math

    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="stop watching after this long"
    )
    parser.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between polls",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fail(command: str, message: object, code: int = 1) -> int:
    sys.stderr.write(f"finetune-kit {command}: {message}\n")
    return code


def _load(command: str, path: str, model: str) -> Dataset | int:
    """The validated dataset, or the exit code after saying what is wrong."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = Dataset.from_jsonl(path)
            report = ds.validate(model=model)
        except (DatasetError, TokenizerError) as exc:
            return _fail(command, exc, 2)
    for warning in caught:
        sys.stderr.write(f"warning: {warning.message}\n")
    if not report.ok:
        sys.stderr.write(f"{report}\n")
        return _fail(command, f"{path} has errors; fix them and try again")
    return ds


def _train(args: argparse.Namespace) -> int:
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
        return _fail("train", exc, 2)
    except openai.OpenAIError as exc:  # no API key, bad configuration
        return _fail("train", exc, 2)
    try:
        estimate = training.estimate_cost(model=args.model, n_epochs=args.epochs)
    except (DatasetError, TokenizerError, ValueError) as exc:
        return _fail("train", exc, 2)
    sys.stdout.write(f"{args.file}: {estimate}\n")
    sys.stdout.flush()
    if not args.yes:
        answer = ask(f"Start fine-tuning {args.model} on {args.file}?")
        if answer is None:
            return _fail(
                "train",
                "stdin is not a terminal, so there is nobody to confirm starting a paid job: "
                "pass --yes to start it anyway",
                2,
            )
        if not answer:
            return _fail("train", "not started")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            job = Job.create_from(training, options)
    except (FinetuneKitError, openai.APIError) as exc:
        return _fail("train", exc)
    except openai.OpenAIError as exc:  # no API key, bad configuration
        return _fail("train", exc, 2)
    for warning in caught:
        sys.stderr.write(f"warning: {warning.message}\n")
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
        return _fail("wait", exc, EXIT_TIMEOUT)
    except (JobFailedError, JobCancelledError) as exc:
        return _fail("wait", exc)
    sys.stdout.write(f"{model.name}\n")
    return 0


def _get(command: str, job_id: str) -> Job | int:
    try:
        return Job.get(job_id)
    except openai.NotFoundError:
        return _fail(command, f"no fine-tuning job {job_id!r}")
    except openai.APIError as exc:
        return _fail(command, exc)
    except openai.OpenAIError as exc:
        return _fail(command, exc, 2)


def _wait(args: argparse.Namespace) -> int:
    job = _get("wait", args.job)
    return job if isinstance(job, int) else _watch(job, args)


def _status(args: argparse.Namespace) -> int:
    job = _get("status", args.job)
    if isinstance(job, int):
        return job
    try:
        events = job.events()[-_EVENTS_SHOWN:]
    except openai.APIError as exc:
        return _fail("status", exc)
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


def _cancel(args: argparse.Namespace) -> int:
    job = _get("cancel", args.job)
    if isinstance(job, int):
        return job
    try:
        job.cancel()
    except openai.APIError as exc:
        return _fail("cancel", exc)
    sys.stdout.write(f"{job.id}: {job.status}\n")
    return 0
