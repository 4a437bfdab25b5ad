"""`finetune-kit` commands for the classify area (see ``_cli.py`` for the conventions).

``finetune-kit classify --model M --labels A,B,C [TEXT | --file FILE]`` classifies one text or
every text of a file (one per line, or JSONL with ``text`` or ``messages``; ``-`` reads stdin)
and prints one line per text: label, confidence, text. ``--json`` prints JSON lines instead.
Exit codes: 0 every text labelled (abstentions included), 1 some text failed, 2 usage error,
unreadable input or no usable client.

``finetune-kit evaluate --model M [--model M2 ...] FILE`` scores models on a labelled JSONL
file (chat examples ending with the label, or ``{"text", "label"}``) and prints the evaluation
table, or the side-by-side comparison when several models are given.

The client comes from the standard ``OPENAI_*`` environment (``OPENAI_BASE_URL`` for Azure's
v1 endpoint, another compatible server or the local backend).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import openai

from .._exceptions import ClassificationError, DatasetError
from ..classification._batch import classify_batch
from ..classification._classify import (
    Classification,
    TechniqueChoice,
    TextInput,
    classify_many,
    sync_client,
)
from ..evaluate import compare, evaluation_items
from ..models._tuned_model import TunedModel

if TYPE_CHECKING:
    import argparse

__all__ = ["read_texts", "register"]

_SNIPPET = 60


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``classify`` and ``evaluate`` to the ``finetune-kit`` parser."""
    parser = sub.add_parser(
        "classify",
        help="label texts with a model; the answer is always one of the labels",
        description=(
            "Classify TEXT, or each text of --file (one per line, or JSONL with 'text' or "
            "'messages'; '-' reads stdin), into one of --labels. Exit code: 0 all labelled, "
            "1 some failed, 2 usage error or unreadable input."
        ),
    )
    parser.add_argument("text", metavar="TEXT", nargs="?", help="the text to classify")
    parser.add_argument("--file", "-f", metavar="FILE", help="classify every text of FILE")
    parser.add_argument("--model", "-m", required=True, help="the model or deployment to ask")
    parser.add_argument("--labels", "-l", required=True, help="the labels, comma-separated: A,B,C")
    parser.add_argument("--instructions", "-i", help="what the classification is about")
    parser.add_argument(
        "--technique", choices=get_args(TechniqueChoice), default="auto", help="default: auto"
    )
    parser.add_argument(
        "--abstain-below",
        type=float,
        metavar="P",
        help="answer '-' instead of a label whose probability is below P",
    )
    parser.add_argument("--base-model", help="the encoding's model when MODEL is a deployment")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument(
        "--batch", action="store_true", help="use the Batch API (half price, up to 24 h)"
    )
    parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON lines")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=_classify)

    evaluate = sub.add_parser(
        "evaluate",
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
    evaluate.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight (default 8)"
    )
    evaluate.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(handler=_evaluate)


def read_texts(file: str) -> list[TextInput]:
    """The texts of ``file`` (``-``: stdin): JSONL records, else one text per line.

    A ``.jsonl`` file, or any input whose first non-blank line is a JSON object, is read as
    JSONL: each record's ``text``, or its ``messages`` (without a final assistant answer, so
    training files can be classified as they are).

    Raises:
        OSError: the file cannot be read.
        ValueError: a JSONL record has neither ``text`` nor ``messages``.
    """
    raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
    lines = [line for line in raw.splitlines() if line.strip()]
    as_jsonl = file.endswith(".jsonl") or (bool(lines) and lines[0].lstrip().startswith("{"))
    if not as_jsonl:
        return list(lines)
    texts: list[TextInput] = []
    for number, line in enumerate(lines, start=1):
        record = json.loads(line)
        text = record.get("text") if isinstance(record, dict) else None
        messages = record.get("messages") if isinstance(record, dict) else None
        if isinstance(text, str):
            texts.append(text)
        elif isinstance(messages, list) and messages:
            last = messages[-1]
            if isinstance(last, dict) and last.get("role") == "assistant" and len(messages) > 1:
                messages = messages[:-1]
            texts.append(messages)
        else:
            raise ValueError(f"line {number}: needs 'text' or 'messages'")
    return texts


def _labels(value: str) -> list[str]:
    return [label.strip() for label in value.split(",") if label.strip()]


def _snippet(text: TextInput) -> str:
    if not isinstance(text, str):
        contents = [m.get("content") for m in text if isinstance(m.get("content"), str)]
        text = str(contents[-1]) if contents else ""
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET else flat[: _SNIPPET - 1] + "…"


def _line(text: TextInput, result: Classification | ClassificationError) -> str:
    if isinstance(result, ClassificationError):
        return f"!error\t-\t{_snippet(text)}\t{result}"
    confidence = f"{result.confidence:.3f}" if result.confidence is not None else "-"
    return f"{result.label if result.label is not None else '-'}\t{confidence}\t{_snippet(text)}"


def _json_line(index: int, result: Classification | ClassificationError) -> str:
    payload: dict[str, Any]
    if isinstance(result, ClassificationError):
        payload = {"index": index, "error": str(result), "raw_output": result.raw_output}
    else:
        payload = {"index": index, **result.model_dump(mode="json")}
    return json.dumps(payload, ensure_ascii=False)


def _fail(command: str, message: object) -> int:
    sys.stderr.write(f"finetune-kit {command}: {message}\n")
    return 2


def _classify(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.file is None):
        return _fail("classify", "give either TEXT or --file FILE")
    labels = _labels(args.labels)
    try:
        texts = [args.text] if args.text is not None else read_texts(args.file)
        client = sync_client(None)
    except (OSError, ValueError, openai.OpenAIError) as exc:
        return _fail("classify", exc)
    progress = not args.no_progress and len(texts) > 1
    try:
        if args.batch:
            results = classify_batch(
                texts,
                labels=labels,
                model=args.model,
                client=client,
                instructions=args.instructions,
                technique=args.technique,
                abstain_below=args.abstain_below,
                base_model=args.base_model,
                progress=progress,
            )
        else:
            results = classify_many(
                texts,
                labels=labels,
                model=args.model,
                client=client,
                instructions=args.instructions,
                technique=args.technique,
                abstain_below=args.abstain_below,
                base_model=args.base_model,
                concurrency=args.concurrency,
                progress=progress,
            )
    except ValueError as exc:
        return _fail("classify", exc)
    except openai.APIError as exc:
        sys.stderr.write(f"finetune-kit classify: {exc}\n")
        return 1
    for index, (text, result) in enumerate(zip(texts, results, strict=True)):
        out = _json_line(index, result) if args.as_json else _line(text, result)
        sys.stdout.write(out + "\n")
    return 1 if any(isinstance(r, ClassificationError) for r in results) else 0


def _evaluate(args: argparse.Namespace) -> int:
    try:
        items = evaluation_items(args.file)
        client = sync_client(None)
    except (OSError, ValueError, DatasetError, openai.OpenAIError) as exc:
        return _fail("evaluate", exc)
    # Read once, scored by each model: the pairs go back into the shape evaluate() reads.
    records = [
        {"messages": [*conversation, {"role": "assistant", "content": gold}]}
        for conversation, gold in items
    ]
    labels = _labels(args.labels) if args.labels else None
    evaluations = []
    try:
        for model in args.model:
            evaluations.append(
                TunedModel(model, client=client).evaluate(
                    records,
                    labels=labels,
                    concurrency=args.concurrency,
                    instructions=args.instructions,
                    progress=not args.no_progress,
                )
            )
    except ValueError as exc:
        return _fail("evaluate", exc)
    except openai.APIError as exc:
        sys.stderr.write(f"finetune-kit evaluate: {exc}\n")
        return 1
    if args.as_json:
        payload = [e.model_dump(mode="json", exclude={"golds", "predictions"}) for e in evaluations]
        sys.stdout.write(json.dumps(payload if len(payload) > 1 else payload[0], indent=2) + "\n")
    elif len(evaluations) == 1:
        sys.stdout.write(f"{evaluations[0]}\n")
    else:
        sys.stdout.write(f"{compare(*evaluations)}\n")
    return 0
