"""What classify() returns: the label chosen for one text and the tokens it cost."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from .._exceptions import ClassificationError

__all__ = ["Classification", "ItemResult", "Technique", "TechniqueChoice", "TokenUsage"]

Technique = Literal["logit_bias", "structured", "prompt"]
TechniqueChoice = Literal["auto", "logit_bias", "structured", "prompt"]


class TokenUsage(BaseModel):
    """Tokens spent, summed over every request made for a result (re-asks included).

    Attributes:
        prompt_tokens: input tokens.
        completion_tokens: output tokens (reasoning tokens included where the model has them).
        requests: chat completion requests answered (refused ones are not billed, not counted).
    """

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            requests=self.requests + other.requests,
        )


class Classification(BaseModel):
    """The label a model chose for one text.

    Attributes:
        label: one of the labels, always; None only when ``abstain_below`` was given and the
            model's confidence fell below it (or, with ``abstain_below`` given, when no label
            could be read from the answer).
        probabilities: label -> probability, renormalised over the labels, when the technique
            sees the model's distribution (``logit_bias`` with logprobs); labels outside the
            top 20 tokens get 0.0. None otherwise.
        probability_outside: the probability mass the model put on tokens that start no label
            (before renormalisation); None when the distribution is not seen.
        confidence: the probability of the chosen label, when known. When it is None,
            ``abstain_below`` cannot apply and the model's answer is returned.
        technique: the rung of the ladder that produced the answer.
        usage: tokens spent on this text.
        raw_output: the model's last answer as text (an alias, JSON, or the label itself).
        model: the model asked.
    """

    model_config = ConfigDict(frozen=True)

    label: str | None
    probabilities: dict[str, float] | None = None
    probability_outside: float | None = None
    confidence: float | None = None
    technique: Technique
    usage: TokenUsage = TokenUsage()
    raw_output: str | None = None
    model: str

    @property
    def abstained(self) -> bool:
        """True when the caller allowed abstention and the model gave no confident label."""
        return self.label is None

    def _repr_html_(self) -> str:
        from ..display import _html

        return _html.classification(self)


#: One text's outcome in a many-texts result: its classification, or why it failed.
ItemResult = Classification | ClassificationError
