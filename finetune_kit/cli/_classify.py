"""`finetune-kit` commands for the classify area (see ``_main.py`` for the conventions).

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
from typing import TYPE_CHECKING, Any

import openai

from .._exceptions import ClassificationError, DatasetError
from ..classification._batch import classify_batch
from ..classification._classify import (
    Classification,
    TextInput,
    classify_many,
    sync_client,
)
from ..evaluate import compare, evaluation_items
from ..models._tuned_model import TunedModel
from ._common import fail

if TYPE_CHECKING:
    import argparse

    from ..classification._options import ClassifyKwargs

__all__ = ["read_texts", "run_classify", "run_evaluate"]

_SNIPPET = 60


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


def run_classify(args: argparse.Namespace) -> int:
    """``finetune-kit classify``: one line (or JSON line) per text."""
    if (args.text is None) == (args.file is None):
        return fail("classify", "give either TEXT or --file FILE", 2)
    labels = _labels(args.labels)
    try:
        texts = [args.text] if args.text is not None else read_texts(args.file)
        client = sync_client(None)
    except (OSError, ValueError, openai.OpenAIError) as exc:
        return fail("classify", exc, 2)
    progress = not args.no_progress and len(texts) > 1
    # The same classification either way; only how the requests travel differs.
    options: ClassifyKwargs = {
        "instructions": args.instructions,
        "technique": args.technique,
        "abstain_below": args.abstain_below,
        "base_model": args.base_model,
    }
    try:
        if args.batch:
            results = classify_batch(
                texts, labels=labels, model=args.model, client=client, progress=progress, **options
            )
        else:
            results = classify_many(
                texts,
                labels=labels,
                model=args.model,
                client=client,
                concurrency=args.concurrency,
                progress=progress,
                **options,
            )
    except ValueError as exc:
        return fail("classify", exc, 2)
    except openai.APIError as exc:
        return fail("classify", exc)
    for index, (text, result) in enumerate(zip(texts, results, strict=True)):
        out = _json_line(index, result) if args.as_json else _line(text, result)
        sys.stdout.write(out + "\n")
    return 1 if any(isinstance(r, ClassificationError) for r in results) else 0


def run_evaluate(args: argparse.Namespace) -> int:
    """``finetune-kit evaluate``: the evaluation table, or the comparison of several."""
    try:
        items = evaluation_items(args.file)
        client = sync_client(None)
    except (OSError, ValueError, DatasetError, openai.OpenAIError) as exc:
        return fail("evaluate", exc, 2)
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
        return fail("evaluate", exc, 2)
    except openai.APIError as exc:
        return fail("evaluate", exc)
    if args.as_json:
        payload = [e.model_dump(mode="json", exclude={"golds", "predictions"}) for e in evaluations]
        sys.stdout.write(json.dumps(payload if len(payload) > 1 else payload[0], indent=2) + "\n")
    elif len(evaluations) == 1:
        sys.stdout.write(f"{evaluations[0]}\n")
    else:
        sys.stdout.write(f"{compare(*evaluations)}\n")
    return 0
