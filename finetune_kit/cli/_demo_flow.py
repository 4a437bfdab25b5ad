"""The demo flow behind ``finetune-kit demo``: the whole fine-tuning loop on bundled data.

validate -> stats and cost -> stratified split -> upload -> fine-tune -> evaluate base vs tuned
on the held-out split -> classify a few texts with probabilities. It runs against the local
backend by default (no key, no cost) or against any client it is given. On Azure (``azure=``)
the job trains on a tier, and the tuned model is deployed before it is evaluated and asked,
then undeployed (deployments are billed per hour while they exist).

The flow reports progress through a ``say`` callback (the CLI prints; tests collect), so this
module never writes to stdout itself.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..evaluate import compare
from ..facts._models import facts_table, model_facts
from ..jobs._job import Job
from ..models._task import ClassificationTask

if TYPE_CHECKING:
    from collections.abc import Callable

    import openai

    from .._core.retry import RetryPolicy
    from ..datasets._dataset import Dataset
    from ..models._deployments import AzureDeployments

__all__ = [
    "DEMO_AZURE_MODEL",
    "DEMO_MODEL",
    "AzureDemo",
    "DemoDeclined",
    "DemoSummary",
    "load_demo_data",
    "run_demo",
]

#: The base model the demo tunes (its prices and encoding are in the catalog).
DEMO_MODEL = "gpt-4o-mini"
#: On Azure, fine-tuning takes a dated snapshot.
DEMO_AZURE_MODEL = "gpt-4o-mini-2024-07-18"

_SYSTEM = "Classify the topic of the user's message."
_SAMPLES = (
    "Can you write a function that reverses a linked list?",
    "Do you ever feel lonely when nobody is talking to you?",
    "Which planet is closest to the sun?",
)


class DemoDeclined(Exception):
    """The user declined the fine-tuning step; nothing was uploaded."""


@dataclass(frozen=True)
class AzureDemo:
    """How the demo runs on Azure: the training tier and where the tuned model is deployed.

    Attributes:
        deployments: the resource's deployments (the local backend's, in the offline demo).
        tier: the training tier (``"standard"``, ``"global"`` or ``"developer"``).
        deployment: the deployment's name.
        sku: the deployment type.
    """

    deployments: AzureDeployments
    tier: str = "global"
    deployment: str = "finetune-kit-demo"
    sku: str = "Standard"


@dataclass
class DemoSummary:
    """What one demo run did and measured (``finetune-kit demo --json`` prints it)."""

    backend: str
    model: str
    n_examples: int
    labels: list[str]
    validation_errors: int
    validation_warnings: int
    total_tokens: int
    n_epochs: int
    estimated_usd: float | None
    price_date: str
    n_train: int
    n_validation: int
    job_id: str = ""
    fine_tuned_model: str = ""
    trained_tokens: int | None = None
    base_accuracy: float = 0.0
    tuned_accuracy: float = 0.0
    base_macro_f1: float = 0.0
    tuned_macro_f1: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    tier: str | None = None
    deployment: dict[str, Any] | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys."""
        return dict(self.__dict__)


def load_demo_data() -> tuple[list[str], list[str]]:
    """The bundled labelled texts (see ``finetune_kit/data/demo/README.md`` for provenance)."""
    ref = resources.files("finetune_kit") / "data" / "demo" / "chatbot_topics.csv"
    rows = list(csv.DictReader(io.StringIO(ref.read_text(encoding="utf-8"))))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def run_demo(
    client: openai.OpenAI,
    *,
    backend: str,
    model: str = DEMO_MODEL,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    confirm: Callable[[str], bool] | None = None,
    poll_interval: float = 5.0,
    retry: RetryPolicy | None = None,
    azure: AzureDemo | None = None,
) -> DemoSummary:
    """Run the whole loop through ``client`` and return what it measured.

    Args:
        client: where requests go (the local backend's client, or a real endpoint's).
        backend: a short description of where that is, for the summary.
        model: the base model to fine-tune.
        progress: show progress bars (fine-tuning, evaluation).
        say: receives one human-readable line per step.
        confirm: asked before anything that costs money; False stops the run before any
            upload.
        poll_interval: seconds between polls of the fine-tuning job.
        retry: the retry policy for every request (its ``sleep``/``clock`` also drive polling).
        azure: train on this tier and serve through a deployment (``client`` is Azure's).

    Raises:
        DemoDeclined: ``confirm`` said no.
    """
    say = say or _quiet
    started = time.monotonic()
    texts, labels = load_demo_data()
    label_set = sorted(set(labels))
    counts = Counter(labels)
    # One task writes the prompt for training and for every request: the tuned model is
    # asked exactly what it was trained on.
    task = ClassificationTask(label_set, instructions=_SYSTEM)
    dataset = task.dataset(texts, labels)
    say(
        f"dataset   {len(dataset)} labelled messages, {len(label_set)} labels: "
        + ", ".join(f"{name} ({counts[name]})" for name in label_set)
    )

    report = dataset.validate(model=model)
    say(
        f"validate  {'ok' if report.ok else 'FAILED'}: {report.n_errors} errors, "
        f"{report.n_warnings} warnings"
    )
    report.raise_for_errors()

    stats = dataset.stats(model=model)
    cost = dataset.estimate_cost(model=model)
    price = "unknown price" if cost.usd is None else f"${cost.usd:.2f}"
    say(
        f"estimate  {stats.total_tokens:,} tokens in all {len(dataset)} examples "
        f"({stats.tokens_per_example.mean:.0f} each); {cost.n_epochs} epochs -> "
        f"{cost.trained_tokens:,} trained tokens, at most {price} at {cost.base_model} prices "
        f"of {cost.price_date.isoformat()}"
    )
    summary = DemoSummary(
        backend=backend,
        model=model,
        n_examples=len(dataset),
        labels=label_set,
        validation_errors=report.n_errors,
        validation_warnings=report.n_warnings,
        total_tokens=stats.total_tokens,
        n_epochs=cost.n_epochs,
        estimated_usd=cost.usd,
        price_date=cost.price_date.isoformat(),
        n_train=0,
        n_validation=0,
    )

    train, held_out = dataset.split(test_size=0.2, seed=0)
    summary.n_train, summary.n_validation = len(train), len(held_out)
    say(f"split     {len(train)} for training, {len(held_out)} held out (stratified, seed 0)")

    question = f"Fine-tune {model} on {len(train)} examples (estimated {price})?"
    if confirm is not None and not confirm(question):
        raise DemoDeclined("stopped before uploading anything: not confirmed")

    job = Job.create(
        train,
        model=model,
        validation=held_out,
        suffix="demo",
        seed=0,
        client=client,
        retry=retry,
        tier=azure.tier if azure else None,
    )
    summary.tier = azure.tier if azure else None
    on_tier = f", {azure.tier} tier" if azure else ""
    say(f"fine-tune job {job.id} on {model}{on_tier} ({job.status})")
    tuned = job.wait(progress=progress, poll_interval=poll_interval)
    job.refresh()
    summary.job_id = job.id
    summary.fine_tuned_model = tuned.name
    summary.trained_tokens = job.trained_tokens
    say(f"tuned     {tuned.name} ({job.trained_tokens or 0:,} trained tokens)")
    if azure is None:
        _measure(summary, task, held_out, client, tuned.name, say, progress, retry)
    else:
        _deployed(summary, azure, task, held_out, client, tuned.name, say, progress, retry)
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _deployed(
    summary: DemoSummary,
    azure: AzureDemo,
    task: ClassificationTask,
    held_out: Dataset,
    client: openai.OpenAI,
    tuned: str,
    say: Callable[[str], None],
    progress: bool,
    retry: RetryPolicy | None,
) -> None:
    """Deploy the tuned model, measure it through the deployment, then undeploy it."""
    deployment = azure.deployments.deploy(tuned, name=azure.deployment, sku=azure.sku)
    summary.deployment = _deployment_summary(deployment.name, tuned, deployment.sku)
    say(
        f"deploy    {deployment.name} -> {tuned} ({deployment.sku}); "
        + _hosting(summary.deployment)
    )
    try:
        _measure(summary, task, held_out, client, deployment.name, say, progress, retry)
    finally:
        # Billed per hour while it exists: never leave the demo's deployment behind.
        azure.deployments.undeploy(deployment.name)
        say(f"undeploy  {deployment.name}")


def _deployment_summary(name: str, model: str, sku: str) -> dict[str, Any]:
    facts = model_facts(model, endpoint="azure")
    checked = facts.checked or facts_table("azure").checked
    return {
        "name": name,
        "model": model,
        "sku": sku,
        "hosting_usd_per_hour": facts.hosting_per_hour,
        "hosting_price_date": checked.isoformat(),
    }


def _hosting(deployment: dict[str, Any]) -> str:
    per_hour = deployment["hosting_usd_per_hour"]
    if per_hour is None:
        return "hosting price unknown"
    return (
        f"hosting ~${per_hour:.2f}/hour while deployed (an estimate: Azure prices of "
        f"{deployment['hosting_price_date']})"
    )


def _measure(
    summary: DemoSummary,
    task: ClassificationTask,
    held_out: Dataset,
    client: openai.OpenAI,
    serving: str,
    say: Callable[[str], None],
    progress: bool,
    retry: RetryPolicy | None,
) -> None:
    """Evaluate base vs tuned (served as ``serving``) and classify the samples."""
    model = summary.model
    # A deployment's name says nothing about its model: base_model gives the encoding.
    base_eval = task.evaluate(held_out, model=model, client=client, progress=progress, retry=retry)
    tuned_eval = task.evaluate(
        held_out, model=serving, base_model=model, client=client, progress=progress, retry=retry
    )
    summary.base_accuracy, summary.tuned_accuracy = base_eval.accuracy, tuned_eval.accuracy
    summary.base_macro_f1, summary.tuned_macro_f1 = base_eval.macro_f1, tuned_eval.macro_f1
    say(f"evaluate  on the {len(held_out)} held-out messages:\n{compare(base_eval, tuned_eval)}")

    for text in _SAMPLES:
        result = task.classify(text, model=serving, base_model=model, client=client, retry=retry)
        probabilities = result.probabilities or {}
        top = sorted(probabilities.items(), key=lambda item: -item[1])[:3]
        shown = ", ".join(f"{name} {p:.0%}" for name, p in top)
        say(f"classify  {text!r} -> {result.label} ({shown})")
        summary.samples.append(
            {"text": text, "label": result.label, "probabilities": probabilities}
        )


def _quiet(line: str) -> None:
    del line
