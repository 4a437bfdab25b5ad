"""TunedModel / AsyncTunedModel: a handle on a (fine-tuned) model, usable without any job."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai

__all__ = ["AsyncTunedModel", "TunedModel"]


class TunedModel:
    """A model to use and evaluate: a job's result, one of its checkpoints, or any name.

    Args:
        name: the model id, e.g. ``ft:gpt-4.1-mini:org:suffix:id`` or ``...:ckpt-step-88``.
        client: the client to call it through; omitted, one is built from ``OPENAI_*``.
        job_id: the job that produced it, when known.
        base_model: the model it was tuned from, when known.
        checkpoint_step: the step of the checkpoint this model is, when it is one.
    """

    def __init__(
        self,
        name: str,
        *,
        client: openai.OpenAI | None = None,
        job_id: str | None = None,
        base_model: str | None = None,
        checkpoint_step: int | None = None,
    ) -> None:
        self.name = name
        self.job_id = job_id
        self.base_model = base_model
        self.checkpoint_step = checkpoint_step
        self._client = client

    def __repr__(self) -> str:
        extra = f", job_id={self.job_id!r}" if self.job_id else ""
        if self.checkpoint_step is not None:
            extra += f", checkpoint_step={self.checkpoint_step}"
        return f"TunedModel({self.name!r}{extra})"


class AsyncTunedModel:
    """The async sibling of :class:`TunedModel` (same constructor, coroutine methods)."""

    def __init__(
        self,
        name: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        job_id: str | None = None,
        base_model: str | None = None,
        checkpoint_step: int | None = None,
    ) -> None:
        self.name = name
        self.job_id = job_id
        self.base_model = base_model
        self.checkpoint_step = checkpoint_step
        self._client = client

    def __repr__(self) -> str:
        extra = f", job_id={self.job_id!r}" if self.job_id else ""
        if self.checkpoint_step is not None:
            extra += f", checkpoint_step={self.checkpoint_step}"
        return f"AsyncTunedModel({self.name!r}{extra})"
