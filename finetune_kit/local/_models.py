"""The models API: the backend's own base models and the models it trained.

The local backend's models are not OpenAI's: they answer with its trainer's models and do not
retire when OpenAI retires a model of the same name, so no model here has a
``shutdown_date``. A tuned model's base is the local base name the job was given.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

from ..facts._tokens import base_model_name
from ._errors import ApiError, not_found
from ._persist import Deferred
from ._records import ModelRecord

if TYPE_CHECKING:
    from ._state import State
    from ._trainer_types import AnswerModel

__all__ = ["BASE_MODELS", "Models", "is_reasoning_model", "looks_like_base"]

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
#: When the built-in base models "were created" (a fixed instant: lists never change).
_BASE_CREATED: Final = 1_700_000_000


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` (or the base of an ``ft:`` model) is named like a reasoning model."""
    base = base_model_name(model)
    return any(base == p or base.startswith(p + "-") for p in _REASONING_PREFIXES)


def looks_like_base(name: str) -> bool:
    """Whether ``name`` is a base model name the backend answers as (not ``ft:`` / ``.ft-``)."""
    tuned = name.startswith("ft:") or ".ft-" in name
    return not tuned and name.lower().startswith(_BASE_PREFIXES)


def _base_doc(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": _BASE_CREATED,
        "owned_by": "system",
        "shutdown_date": None,
    }


class Models:
    """Base and tuned models, and the tuned models' weights."""

    def __init__(self, state: State) -> None:
        self.s = state
        self.tuned = state.records("model", ModelRecord.from_doc)
        self._weights: dict[str, AnswerModel] = {}
        self._weights_lock = threading.Lock()

    def now(self) -> float:
        """The backend's clock (chat completions stamp ``created`` with it)."""
        return self.s.now()

    def exists(self, name: str) -> bool:
        """Whether ``name`` is a model this backend can train on or answer as."""
        with self.s.lock:
            return name in self.tuned or looks_like_base(name)

    def base_of(self, name: str) -> str:
        """The local base a model was trained from (``name`` itself for a base model)."""
        with self.s.lock:
            record = self.tuned.get(name)
            return record.base if record is not None else name

    def list(self) -> dict[str, Any]:
        """Base models, then tuned models and checkpoints."""
        with self.s.lock:
            data = [_base_doc(name) for name in BASE_MODELS]
            data += [m.to_api() for m in self.tuned.values()]
        return {"object": "list", "data": data}

    def get(self, name: str) -> dict[str, Any]:
        """One model (base or tuned)."""
        with self.s.lock:
            record = self.tuned.get(name)
            if record is not None:
                return record.to_api()
        if looks_like_base(name):
            return _base_doc(name)
        raise not_found("model", name)

    def delete(self, name: str) -> dict[str, Any]:
        """Delete a tuned model (base models cannot be deleted)."""
        with self.s.lock:
            if name not in self.tuned:
                if looks_like_base(name):
                    raise ApiError(
                        403,
                        f"You do not have permission to delete the model {name}.",
                        code="model_not_deletable",
                    )
                raise not_found("model", name)
            self.drop(name)
            return {"id": name, "object": "model", "deleted": True}

    def add(self, name: str, *, base: str, job_id: str, weights: AnswerModel, at: float) -> None:
        """Record a tuned model or checkpoint (staged; the caller flushes)."""
        record = ModelRecord(id=name, created=int(at), base=base, job_id=job_id)
        self.tuned[name] = record
        with self._weights_lock:
            self._weights[name] = weights
        self.s.stage("model", name, record.to_doc())
        self.s.stage("weights", name, Deferred(weights.to_json))

    def drop(self, name: str) -> None:
        """Forget a tuned model and its weights."""
        self.tuned.pop(name, None)
        with self._weights_lock:
            self._weights.pop(name, None)
        self.s.db.delete("model", name)
        self.s.db.delete("weights", name)

    def resolve(self, name: str) -> tuple[str, AnswerModel | None]:
        """``(name, trained weights or None for a base model)``; 404 for unknown models."""
        with self.s.lock:
            if name not in self.tuned:
                if looks_like_base(name):
                    return name, None
                raise not_found("model", name)
            with self._weights_lock:
                weights = self._weights.get(name)
            if weights is None:
                stored = dict(self.s.db.load("weights")).get(name)
                if stored is None:
                    raise not_found("model", name)
                weights = self.s.trainer.load_model(stored)
                with self._weights_lock:
                    self._weights[name] = weights
            return name, weights
