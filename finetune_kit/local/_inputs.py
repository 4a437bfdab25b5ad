"""What clients send, checked and decoded: job methods, training and batch files; results.

Pure functions (no state, no I/O), used when jobs are created and trained and when batches
run. File checks are :mod:`._validate`'s.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from ..facts._tokens import TokenCounter, encoding_for_model
from ._errors import bad_request
from ._trainer import StepMetrics, TrainingExample, TrainingRun, context_text

if TYPE_CHECKING:
    from ._trainer_types import AnswerModel, Trainer

__all__ = [
    "BadData",
    "batch_lines",
    "grader_reference",
    "method_hyperparameters",
    "method_of",
    "result_csv",
    "run_from_json",
    "run_to_json",
    "training_examples",
]


def method_of(body: dict[str, Any]) -> dict[str, Any]:
    """The ``method`` object to echo, with hyperparameters (legacy top-level ones folded in)."""
    method = body.get("method")
    legacy = body.get("hyperparameters")
    if method is None:
        method = {"type": "supervised", "supervised": {}}
    if not isinstance(method, dict) or method.get("type") not in (
        "supervised",
        "dpo",
        "reinforcement",
    ):
        raise bad_request(
            "Invalid 'method.type': expected 'supervised', 'dpo' or 'reinforcement'.",
            param="method",
        )
    kind = method["type"]
    inner = method.get(kind) or {}
    if not isinstance(inner, dict):
        raise bad_request(f"Invalid 'method.{kind}': expected an object.", param="method")
    hyper = inner.get("hyperparameters") or (legacy if kind == "supervised" else None) or {}
    if not isinstance(hyper, dict):
        raise bad_request("Invalid 'hyperparameters': expected an object.", param="hyperparameters")
    for key in ("n_epochs", "batch_size"):
        value = hyper.get(key, "auto")
        if value != "auto" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise bad_request(f"Invalid '{key}': expected 'auto' or a positive integer.", param=key)
    lr = hyper.get("learning_rate_multiplier", "auto")
    if lr != "auto" and (not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0):
        raise bad_request(
            "Invalid 'learning_rate_multiplier': expected 'auto' or a positive number.",
            param="learning_rate_multiplier",
        )
    if kind == "reinforcement" and not isinstance(inner.get("grader"), dict):
        raise bad_request("Missing required parameter: 'method.reinforcement.grader'.")
    full = {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}
    full.update(hyper)
    return {"type": kind, kind: {**inner, "hyperparameters": full}}


def method_hyperparameters(method: dict[str, Any]) -> dict[str, Any]:
    hyper: dict[str, Any] = method[method["type"]]["hyperparameters"]
    return hyper


class BadData(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def training_examples(
    data: bytes, method: dict[str, Any], base: str
) -> tuple[list[TrainingExample], int]:
    """What the built-in model learns from each line, and the file's billable tokens."""
    counter = TokenCounter(encoding_for_model(base))
    kind = method["type"]
    grader = method.get(kind, {}).get("grader") if kind == "reinforcement" else None
    reference_key = grader_reference(grader) if grader is not None else None
    examples: list[TrainingExample] = []
    tokens = 0
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadData(number, f"invalid JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise BadData(number, "each line must be a JSON object")
        if kind == "dpo":
            messages = (item.get("input") or {}).get("messages") or []
            preferred = item.get("preferred_output") or []
            answer = preferred[0].get("content") if preferred else None
            pairs = [(messages, answer)] if isinstance(answer, str) else []
        elif kind == "reinforcement":
            messages = item.get("messages") or []
            value = item.get(reference_key) if reference_key else None
            pairs = [(messages, str(value))] if value is not None else []
        else:
            messages = item.get("messages")
            if not isinstance(messages, list):
                raise BadData(number, "missing 'messages' list")
            pairs = [
                (messages[:i], m["content"])
                for i, m in enumerate(messages)
                if isinstance(m, dict)
                and m.get("role") == "assistant"
                and isinstance(m.get("content"), str)
                and m.get("weight", 1) != 0
            ]
        if not isinstance(messages, list):
            raise BadData(number, "missing 'messages' list")
        tokens += counter.messages(messages)[0]
        examples.extend(TrainingExample(context_text(ctx), ans) for ctx, ans in pairs)
    if not examples:
        raise BadData(0, "no assistant answers to learn from")
    return examples, tokens


def grader_reference(grader: dict[str, Any]) -> str | None:
    """``key`` from a grader whose reference is the template ``{{ item.key }}``."""
    reference = grader.get("reference")
    if isinstance(reference, str):
        inner = reference.strip().removeprefix("{{").removesuffix("}}").strip()
        if inner.startswith("item.") and inner[5:].isidentifier():
            return inner[5:]
    return None


def result_csv(steps: list[StepMetrics]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
    )
    for s in steps:
        writer.writerow(
            [
                s.step,
                f"{s.train_loss:.5f}",
                f"{s.train_mean_token_accuracy:.5f}",
                "" if s.valid_loss is None else f"{s.valid_loss:.5f}",
                "" if s.valid_mean_token_accuracy is None else f"{s.valid_mean_token_accuracy:.5f}",
            ]
        )
    return out.getvalue().encode()


def run_to_json(run: TrainingRun[AnswerModel]) -> dict[str, Any]:
    """A training run as JSON: each model by its own ``to_json``."""
    return {
        "model": run.model.to_json(),
        "steps": [s.to_json() for s in run.steps],
        "epoch_ends": run.epoch_ends,
        "snapshots": {str(k): v.to_json() for k, v in run.snapshots.items()},
    }


def run_from_json(data: dict[str, Any], trainer: Trainer[AnswerModel]) -> TrainingRun[AnswerModel]:
    """What :func:`run_to_json` wrote, its models loaded by the ``trainer`` that made them."""
    return TrainingRun(
        model=trainer.load_model(data["model"]),
        steps=[StepMetrics(**s) for s in data["steps"]],
        epoch_ends=[int(e) for e in data["epoch_ends"]],
        snapshots={int(k): trainer.load_model(v) for k, v in data["snapshots"].items()},
    )


def batch_lines(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError:
            item = None
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            errors.append(
                {
                    "code": "invalid_json_line",
                    "line": number,
                    "message": "This line is not a JSON object with a string 'custom_id'.",
                    "param": None,
                }
            )
            continue
        if item["custom_id"] in seen:
            errors.append(
                {
                    "code": "duplicate_custom_id",
                    "line": number,
                    "message": f"The custom_id {item['custom_id']!r} is used twice.",
                    "param": "custom_id",
                }
            )
        seen.add(item["custom_id"])
        lines.append(item)
    if not lines and not errors:
        errors.append(
            {
                "code": "empty_file",
                "line": None,
                "message": "The input file is empty.",
                "param": None,
            }
        )
    return lines, errors
