"""DataFrames (the ``pandas`` extra) and Hugging Face datasets (the ``hf`` extra), both ways.

Chat rows use the conversational format of Hugging Face's TRL: a ``messages`` column holding
a list of ``{"role", "content"}`` dicts per row (https://huggingface.co/docs/trl/dataset_formats),
which is also what a fine-tuning JSONL line holds, so nothing is renamed on the way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import DatasetError
from ..datasets._columns import FrameColumns, frame_columns
from ._deps import optional

if TYPE_CHECKING:
    from ..datasets._dataset import Dataset
    from ..evaluate import Comparison, Evaluation
    from ..jobs._job import MetricsSummary

__all__ = [
    "comparison_frame",
    "dataset_from_hf",
    "dataset_from_pandas",
    "dataset_to_hf",
    "dataset_to_pandas",
    "evaluation_frame",
    "metrics_frame",
]

Row = tuple[object, Mapping[str, Any]]


def dataset_from_pandas(frame: Any, where: str, options: Mapping[str, object]) -> Dataset:
    """A Dataset from a DataFrame's labelled texts or chat rows (see ``Dataset.from_pandas``);
    ``options`` are the entry point's (``where``) ``FrameColumns`` keywords."""
    chosen = frame_columns(where, options)
    columns = [str(c) for c in frame.columns]
    rows: Iterable[Row] = zip(frame.index, frame.to_dict("records"), strict=True)
    return _build(rows, columns, "DataFrame", chosen)


def dataset_from_hf(data: Any, where: str, options: Mapping[str, object]) -> Dataset:
    """A Dataset from a Hugging Face ``datasets.Dataset`` (see ``Dataset.from_hf``), as
    :func:`dataset_from_pandas`."""
    chosen = frame_columns(where, options)
    return _build(enumerate(data), list(data.column_names), "Hugging Face dataset", chosen)


def dataset_to_pandas(dataset: Dataset) -> Any:
    """One row per example, one column per top-level key (``messages``, ``tools``, ...)."""
    pandas = optional("pandas", "pandas")
    return pandas.DataFrame(list(dataset))


def dataset_to_hf(dataset: Dataset) -> Any:
    """A Hugging Face dataset with one row per example (TRL's format for chat data)."""
    datasets = optional("datasets", "hf")
    return datasets.Dataset.from_list(list(dataset))


def _build(
    rows: Iterable[Row], columns: Sequence[str], source: str, chosen: FrameColumns
) -> Dataset:
    from ..datasets._dataset import Dataset

    text, label, messages = chosen.get("text"), chosen.get("label"), chosen.get("messages")
    labelled = text is not None or label is not None
    if (messages is not None) == labelled or (labelled and (text is None or label is None)):
        raise TypeError("give text= and label= (labelled texts) or messages= (chat rows), not both")
    for name in (text, label, messages):
        if name is not None and name not in columns:
            raise DatasetError(
                f"column {name!r} is not in the {source}; its columns are {list(columns)!r}"
            )
    if messages is not None:
        records = [{"messages": _messages(row[messages], messages, key)} for key, row in rows]
        return Dataset.from_records(records, kind="chat")
    assert text is not None  # checked above
    assert label is not None
    texts: list[str] = []
    labels: list[str] = []
    for key, row in rows:
        texts.append(_string(row[text], text, key))
        labels.append(_string(row[label], label, key))
    return Dataset.from_labels(texts, labels, system=chosen.get("system"))


def _where(column: str, key: object) -> str:
    return f"column {column!r}, row {key!r}"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _string(value: object, column: str, key: object) -> str:
    if _missing(value):
        raise DatasetError(f"{_where(column, key)}: the value is missing")
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{_where(column, key)}: expected a non-empty string, got {value!r}")
    return value


def _plain(value: Any) -> Any:
    """Lists and dicts all the way down (pandas and Arrow hand out numpy arrays for lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, (str, bytes)):
        return _plain(tolist())
    return value


def _messages(value: object, column: str, key: object) -> list[dict[str, Any]]:
    if _missing(value):
        raise DatasetError(f"{_where(column, key)}: the value is missing")
    turns = _plain(value)
    if not isinstance(turns, list) or not turns:
        raise DatasetError(
            f"{_where(column, key)}: expected a non-empty list of messages "
            f"({{'role': ..., 'content': ...}}), got {type(value).__name__}"
        )
    out: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("role"), str):
            raise DatasetError(
                f"{_where(column, key)}: message {i} needs a 'role' string, got {turn!r}"
            )
        # Arrow gives every message every key seen in the column, absent ones as None.
        out.append({k: v for k, v in turn.items() if v is not None or k == "content"})
    return out


# --- results ---------------------------------------------------------------------------------


def evaluation_frame(result: Evaluation) -> Any:
    """One row per example: input, gold, predicted, correct, confidence, probabilities.

    ``input`` is None when the evaluation was built without its inputs; ``confidence`` and
    ``probabilities`` are None where the technique did not see the model's distribution.
    """
    pandas = optional("pandas", "pandas")
    n = len(result.golds)
    return pandas.DataFrame(
        {
            "input": list(result.inputs) if len(result.inputs) == n else [None] * n,
            "gold": list(result.golds),
            "predicted": list(result.predictions),
            "correct": [g == p for g, p in zip(result.golds, result.predictions, strict=True)],
            "confidence": _aligned(result.confidences, n),
            "probabilities": _aligned(result.probabilities, n),
        }
    )


def _aligned(values: Sequence[Any], n: int) -> list[Any]:
    # Evaluations saved before these fields existed load with them empty.
    return list(values) if len(values) == n else [None] * n


def metrics_frame(summary: MetricsSummary, fields: Sequence[str]) -> Any:
    """One row per step: the metrics ``fields`` of each row, and the checkpoint saved there."""
    pandas = optional("pandas", "pandas")
    saved = {c.step: c.model for c in summary.checkpoints}
    records = [{**row.model_dump(), "checkpoint": saved.get(row.step)} for row in summary.rows]
    return pandas.DataFrame(records, columns=[*fields, "checkpoint"])


def comparison_frame(result: Comparison) -> Any:
    """A row per metric, a column per model (examples first)."""
    pandas = optional("pandas", "pandas")
    scores: dict[str, list[float | None]] = {
        "examples": [float(e.n) for e in result.evaluations],
        **result.scores(),
    }
    return pandas.DataFrame.from_dict(scores, orient="index", columns=result.models)
