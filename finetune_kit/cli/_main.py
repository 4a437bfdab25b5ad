"""The ``finetune-kit`` command: parses arguments, calls the library, renders the result.

This module is the command line's grammar: every command with its arguments and help, and the
options several commands share (``--json``, ``--no-progress``, ``--yes``, ``--concurrency``,
the job id, the waiting and Azure resource options) each defined once. What a command does
lives in its area's module (``_dataset``, ``_job``, ``_classify``, ``_local``, ``_azure``,
``_demo``) as a ``run_*`` handler that takes the parsed namespace and returns the process exit
code. Exit codes shared by every command: 0 success, 1 the thing checked/run failed, 2 usage
error or unreadable input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import get_args

from .._version import __version__

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=handler)
    return parser


def _flag(parser: argparse.ArgumentParser, *names: str, help: str) -> None:
    parser.add_argument(*names, action="store_true", help=help)


def _json(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--json", action="store_true", dest="as_json", help=help)


def _yes(parser: argparse.ArgumentParser, help: str) -> None:
    _flag(parser, "--yes", "-y", help=help)


def _no_progress(parser: argparse.ArgumentParser) -> None:
    _flag(parser, "--no-progress", help="hide the progress bar")


def _concurrency(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")


def _job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the job id (ftjob-...)")


def _wait_options(parser: argparse.ArgumentParser) -> None:
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
    _no_progress(parser)


def _resource_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscription", required=True, help="the Azure subscription id")
    parser.add_argument("--resource-group", required=True, help="the resource group")
    parser.add_argument("--account", required=True, help="the Azure OpenAI resource name")
    parser.add_argument(
        "--management-url",
        default="https://management.azure.com",
        help="the Azure Resource Manager endpoint (another cloud)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command registered."""
    parser = argparse.ArgumentParser(
        prog="finetune-kit",
        description="Validate training data, run fine-tuning jobs, classify with tuned models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Each area's command module (and the library behind it) is imported when the parser is
    # built, not when this module is imported.
    _demo_command(sub)
    _dataset_commands(sub)
    _job_commands(sub)
    _classify_commands(sub)
    _local_commands(sub)
    _azure_commands(sub)
    return parser


def _demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..jobs._options import TIERS
    from . import _demo

    demo = _command(
        sub,
        "demo",
        _demo.run_demo_command,
        help="run the whole fine-tuning loop on bundled data (local backend, no key needed)",
        description=(
            "Validate, estimate, split, upload, fine-tune, evaluate base vs tuned on the "
            "held-out split and classify a few texts — on the built-in local backend, or with "
            "--remote on the endpoint your OPENAI_* environment names. --azure runs the same "
            "loop the Azure OpenAI way, offline: train on a tier, deploy, evaluate and "
            "classify through the deployment, undeploy."
        ),
    )
    _json(demo, "print one JSON summary only")
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--remote",
        action="store_true",
        help="use the OPENAI_* environment's endpoint (costs money; asks first)",
    )
    where.add_argument(
        "--azure",
        action="store_true",
        help=(
            "the Azure OpenAI path on the local backend: a training tier and a deployment "
            "(offline; needs the 'azure' extra)"
        ),
    )
    demo.add_argument(
        "--tier",
        choices=TIERS,
        default="global",
        help="with --azure: the training tier (default: global)",
    )
    demo.add_argument("--model", default=None, help="base model to fine-tune")
    _yes(demo, "do not ask before spending money")
    _no_progress(demo)
    demo.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="pace of the local backend's jobs (2 = twice as fast; default 1)",
    )


def _dataset_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..datasets._reports import DatasetKind
    from . import _dataset

    validate = _command(
        sub,
        "validate",
        _dataset.run_validate,
        help="check a JSONL training file: problems, token statistics, cost estimate",
        description=(
            "Check a JSONL training file the way the fine-tuning service will, and print its "
            "problems (line, code, message), token statistics and cost estimate. Exit code: 0 "
            "valid, 1 errors found, 2 usage error or unreadable file."
        ),
    )
    validate.add_argument("file", metavar="FILE", help="the JSONL file to check")
    validate.add_argument(
        "--model",
        "-m",
        help="check against this model (training context, encoding, price), e.g. gpt-4.1-mini",
    )
    validate.add_argument(
        "--kind", choices=get_args(DatasetKind), help="force the format instead of detecting it"
    )
    _json(validate, "print one JSON object instead")


def _job_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..jobs._options import TIERS
    from . import _job

    train = _command(
        sub,
        "train",
        _job.run_train,
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
    _yes(train, "start without asking")
    _flag(train, "--wait", help="watch the job until it ends")
    _wait_options(train)

    status = _command(
        sub, "status", _job.run_status, help="show a fine-tuning job's state and latest events"
    )
    _job_id(status)
    wait = _command(
        sub,
        "wait",
        _job.run_wait,
        help="watch a fine-tuning job until it ends",
        description=(
            "Watch JOB until it ends and print the tuned model's name. Exit code: 0 succeeded, "
            "1 failed or cancelled, 3 timed out (the job keeps running)."
        ),
    )
    _job_id(wait)
    _wait_options(wait)
    _job_id(_command(sub, "cancel", _job.run_cancel, help="cancel a fine-tuning job"))


def _classify_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..classification._classify import TechniqueChoice
    from . import _classify

    classify = _command(
        sub,
        "classify",
        _classify.run_classify,
        help="label texts with a model; the answer is always one of the labels",
        description=(
            "Classify TEXT, or each text of --file (one per line, or JSONL with 'text' or "
            "'messages'; '-' reads stdin), into one of --labels. Exit code: 0 all labelled, "
            "1 some failed, 2 usage error or unreadable input."
        ),
    )
    classify.add_argument("text", metavar="TEXT", nargs="?", help="the text to classify")
    classify.add_argument("--file", "-f", metavar="FILE", help="classify every text of FILE")
    classify.add_argument("--model", "-m", required=True, help="the model or deployment to ask")
    classify.add_argument(
        "--labels", "-l", required=True, help="the labels, comma-separated: A,B,C"
    )
    classify.add_argument("--instructions", "-i", help="what the classification is about")
    classify.add_argument(
        "--technique", choices=get_args(TechniqueChoice), default="auto", help="default: auto"
    )
    classify.add_argument(
        "--abstain-below",
        type=float,
        metavar="P",
        help="answer '-' instead of a label whose probability is below P",
    )
    classify.add_argument("--base-model", help="the encoding's model when MODEL is a deployment")
    _concurrency(classify)
    _flag(classify, "--batch", help="use the Batch API (half price, up to 24 h)")
    _json(classify, "print JSON lines")
    _no_progress(classify)

    evaluate = _command(
        sub,
        "evaluate",
        _classify.run_evaluate,
        help="score models on a labelled held-out file",
        description=(
            "Classify each example of FILE (chat examples ending with the assistant's label, "
            "or JSONL {'text', 'label'}) and print accuracy, macro-F1, per-label scores and "
            "the confusion matrix; several --model flags print them side by side."
        ),
    )
    evaluate.add_argument("file", metavar="FILE", help="the labelled JSONL file")
    evaluate.add_argument(
        "--model", "-m", required=True, action="append", help="a model to score (repeatable)"
    )
    evaluate.add_argument("--labels", "-l", help="the label set (default: the file's labels)")
    evaluate.add_argument(
        "--instructions",
        "-i",
        help="use classify's own prompt with these instructions instead of each example's own",
    )
    _concurrency(evaluate)
    _json(evaluate, "print JSON")
    _no_progress(evaluate)


def _local_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import _local

    serve = _command(
        sub,
        "serve",
        _local.run_serve,
        help="run the local OpenAI-compatible fine-tuning backend",
        description=(
            "Run the local backend: an OpenAI-compatible service (files, uploads, fine-tuning "
            "jobs, models, chat completions, batches) that trains a small built-in model. "
            "Point a client at the printed base URL."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    serve.add_argument(
        "--data-dir", default=None, help="keep state here (SQLite + files); default: memory"
    )
    serve.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="inject faults, e.g. '429@POST:/fine_tuning/jobs,first=2;slow@*,rate=0.1,delay=2'",
    )
    serve.add_argument(
        "--speed", type=float, default=1.0, help="run jobs this many times faster (default 1)"
    )
    serve.add_argument(
        "--api-key",
        default=None,
        help="require this key (default: $FINETUNE_KIT_LOCAL_API_KEY, else none); "
        "needed to bind to a non-loopback address",
    )


def _azure_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..models._hosting import IDLE_DELETION_DAYS
    from . import _azure

    deploy = _command(
        sub,
        "deploy",
        _azure.run_deploy,
        help="deploy a fine-tuned model on Azure OpenAI (shows the hosting cost first)",
        description=(
            "Show what keeping MODEL deployed costs, ask for confirmation (or pass --yes), "
            "deploy it on the Azure OpenAI resource (reusing a deployment of it) and wait "
            "until it answers. Azure bills a deployment per hour while it exists, called or "
            f"not, and deletes one left without calls for {IDLE_DELETION_DAYS} days."
        ),
    )
    deploy.add_argument("model", metavar="MODEL", help="the fine-tuned model id")
    _resource_options(deploy)
    deploy.add_argument("--name", help="the deployment name (default: from the model id)")
    deploy.add_argument(
        "--sku",
        default="Standard",
        help="deployment type: Standard, GlobalStandard, DeveloperTier (no hourly charge)",
    )
    deploy.add_argument("--capacity", type=_positive_int, default=1, help="SKU capacity")
    _flag(deploy, "--no-wait", help="do not wait for provisioning")
    _no_progress(deploy)
    _yes(deploy, "deploy without asking")

    undeploy = _command(
        sub,
        "undeploy",
        _azure.run_undeploy,
        help="delete an Azure OpenAI deployment (stops its hosting charge; the model stays)",
    )
    undeploy.add_argument("name", metavar="NAME", help="the deployment name")
    _resource_options(undeploy)


def _format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    del category, filename, lineno, line
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``finetune-kit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Library warnings (a retiring base model, an unknown model name) are for the person at
    # the terminal: one plain line each, not Python's file:line form.
    warnings.formatwarning = _format_warning
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
