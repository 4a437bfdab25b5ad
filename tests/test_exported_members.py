"""The public face: exactly these names, sorted, each defined by the package itself.

Adding a public name is a deliberate act: change this list in the same commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import finetune_kit
import finetune_kit.local

PUBLIC = [
    "AsyncAzureDeployments",
    "AsyncJob",
    "AsyncTunedModel",
    "AzureDeployments",
    "AzureResource",
    "Capabilities",
    "Checkpoint",
    "Classification",
    "ClassificationError",
    "ClassificationTask",
    "ClassifyOptions",
    "Clock",
    "Comparison",
    "CostEstimate",
    "Dataset",
    "DatasetError",
    "DatasetStats",
    "DatasetValidationError",
    "Deployment",
    "DeploymentError",
    "Distribution",
    "Evaluation",
    "Event",
    "FactsTable",
    "FineTuningUnavailableError",
    "FinetuneKitError",
    "FinetuneKitWarning",
    "Histogram",
    "HostingCost",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobOptions",
    "JobSpec",
    "JobTimeoutError",
    "LabelMetrics",
    "MetricsRow",
    "MetricsSummary",
    "ModelFacts",
    "Problem",
    "RetryPolicy",
    "Session",
    "TokenUsage",
    "TokenizerError",
    "TunedModel",
    "ValidationReport",
    "__version__",
    "aclassify",
    "aclassify_batch",
    "aclassify_many",
    "capabilities",
    "classify",
    "classify_batch",
    "classify_many",
    "compare",
    "default_session",
    "estimate_hosting_cost",
    "facts_table",
    "finished_results",
    "model_facts",
    "set_default_session",
    "warm_up",
]

LOCAL_PUBLIC = [
    "AnswerModel",
    "AsyncStaticToken",
    "FaultKind",
    "FaultRule",
    "Faults",
    "Hyperparameters",
    "LinearTrainer",
    "LocalServer",
    "ManualClock",
    "StaticToken",
    "StepMetrics",
    "TrainOptions",
    "Trainer",
    "TrainingExample",
    "TrainingRun",
    "in_process_async_http_client",
    "in_process_http_client",
]


def test_all_is_exactly_the_public_names_sorted() -> None:
    assert finetune_kit.__all__ == PUBLIC
    assert finetune_kit.__all__ == sorted(finetune_kit.__all__)


def test_local_all_is_exactly_its_public_names() -> None:
    assert finetune_kit.local.__all__ == LOCAL_PUBLIC


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "__version__"])
def test_public_members_come_from_the_package(name: str) -> None:
    member = getattr(finetune_kit, name)
    assert member.__module__.startswith("finetune_kit."), name
    # Shown as the package's own in reprs and docs, not as a private module's.
    assert member.__doc__, f"{name} has no docstring"


def test_no_other_public_attributes() -> None:
    public = {n for n in dir(finetune_kit) if not n.startswith("_")}
    # The capability folders are subpackages (their modules are private); `local` is the
    # public local backend.
    folders = {p.name for p in Path(finetune_kit.__file__).parent.iterdir() if p.is_dir()}
    folders |= {p.stem for p in Path(finetune_kit.__file__).parent.glob("*.py")}
    assert public - folders <= set(PUBLIC)


def test_import_is_cheap_and_side_effect_free() -> None:
    # Importing must not load encodings, build clients, fill caches or print anything, even
    # with no OPENAI_* environment (a client built at import would fail without a key).
    code = (
        "import finetune_kit, finetune_kit.facts._tokens as t, finetune_kit._core.session as c, "
        "finetune_kit.classification._classify as k\n"
        "print(len(t._cache), c._default_client is None, c._default_async_client is None, "
        "k.plan_keys.cache_info().currsize)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert done.stdout.split() == ["0", "True", "True", "0"]
    assert done.stderr == ""
