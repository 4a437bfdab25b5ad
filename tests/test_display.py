"""Notebook HTML: every object renders, the output parses as HTML, and user strings stay text."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import openai
import pytest
from openai.types.fine_tuning import FineTuningJob

from finetune_kit import (
    AsyncJob,
    Classification,
    Comparison,
    CostEstimate,
    Dataset,
    DatasetStats,
    Distribution,
    Evaluation,
    Event,
    Histogram,
    Job,
    MetricsRow,
    Problem,
    RetryPolicy,
    ValidationReport,
    compare,
)
from finetune_kit.display._html import histogram
from finetune_kit.display._html_results import job_parts
from finetune_kit.jobs._job import summarize_metrics
from tests.fake_openai import checkpoint, job_json

if TYPE_CHECKING:
    from finetune_kit.local import LocalServer
    from tests.conftest import RecordingClock

HOSTILE = "<script>alert(1)</script>"
QUOTED = '" onmouseover="alert(2)'
VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr"})


class _Checker(HTMLParser):
    """Collects tags, attributes and text; fails on unbalanced tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag, f"</{tag}> closes the wrong element"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> _Checker:
    """Parse ``markup``; assert it is well nested and carries no script or event handler."""
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    assert not checker.stack, f"unclosed: {checker.stack}"
    assert "script" not in checker.tags
    assert all(name in ("style", "class", "title") for name in checker.attributes)
    return checker


def text_of(markup: str) -> str:
    return "".join(parse(markup).text)


# --- datasets ---------------------------------------------------------------------------------


def test_validation_report_groups_counts_and_caps_problems() -> None:
    problems = [
        Problem(line=None, code="too_few_examples", severity="error", message="need 10"),
        *(
            Problem(line=i, code="bad_role", severity="error", message=f"{HOSTILE} at {i}")
            for i in range(1, 31)
        ),
        Problem(line=7, code=HOSTILE, severity="warning", message=QUOTED),
    ]
    report = ValidationReport(
        source=f"{HOSTILE}.jsonl",
        kind="chat",
        n_examples=300,
        problems=problems,
        counts={"too_few_examples": 1, "bad_role": 250, HOSTILE: 1},
        max_per_code=30,
    )

    text = text_of(report._repr_html_())

    assert f"in 300 chat examples ({HOSTILE}.jsonl)" in text
    assert "bad_role" in text
    assert "250" in text  # the full count, not the 30 kept
    assert "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, \u2026" in text  # the first line numbers
    assert f"line 20: {HOSTILE} at 20" in text
    assert "line 21:" not in text  # capped at 20 listed per code
    assert "\u2026 and 230 more" in text
    assert QUOTED in text
    assert HOSTILE in text  # the hostile code, as text
    assert "dataset: need 10" in text
    assert str(report).startswith("251 error(s), 1 warning(s)")  # plain str unchanged


def test_validation_report_without_problems() -> None:
    report = ValidationReport(kind="chat", n_examples=12)

    assert "No problems found." in text_of(report._repr_html_())


def _distribution(values: list[int]) -> Distribution:
    return Distribution.from_counts({v: values.count(v) for v in set(values)})


def test_dataset_stats_table_lengths_and_labels() -> None:
    stats = DatasetStats(
        model="gpt-4o-mini",
        encoding="o200k_base",
        kind="chat",
        n_examples=4,
        total_tokens=100,
        assistant_tokens=8,
        billable_tokens=100,
        training_context=65_536,
        n_over_limit=0,
        tokens_per_example=_distribution([10, 20, 30, 40]),
        assistant_tokens_per_example=_distribution([2, 2, 2, 2]),
        messages_per_example=_distribution([3, 3, 3, 3]),
        label_counts={HOSTILE: 3, "dog": 1},
        token_histogram=Histogram(edges=(10, 20, 30, 40, 50), counts=(2, 1, 0, 1)),
    )

    markup = stats._repr_html_()
    text = text_of(markup)

    assert "trained tokens" in text
    assert "65,536" in text
    # min, p10, p50, mean, p90, max of 10, 20, 30, 40
    assert "tokens101325253740" in text
    assert HOSTILE in text
    # One bar per label (2).
    assert markup.count("background: #eee") == 2
    # One column per bin, its height scaled to the fullest bin, its range and count on hover.
    assert _histogram_bars(markup) == [
        ("10\u201319 tokens: 2 examples", 60),
        ("20\u201329 tokens: 1 examples", 30),
        ("30\u201339 tokens: 0 examples", 0),
        ("40\u201349 tokens: 1 examples", 30),
    ]
    assert "beyond every example" in text


def _histogram_bars(markup: str) -> list[tuple[str, int]]:
    return [
        (title, int(height))
        for title, height in re.findall(r'title="([^"]*)" style="[^"]*height: (\d+)px', markup)
    ]


def test_histogram_colours_the_bins_past_the_context() -> None:
    markup = histogram(Histogram(edges=(0, 100, 200, 300), counts=(5, 3, 1)), 150)

    bars = re.findall(r"height: \d+px; margin-right: 1px; background: (#\w+)", markup)
    assert bars == ["#4c78a8", "#c0392b", "#c0392b"]
    assert "red bins reach past it" in text_of(markup)


def test_real_dataset_reports_render() -> None:
    data = Dataset.from_labels([f"text {i} {HOSTILE}" for i in range(12)], ["a", "b"] * 6)

    assert "Validation report" in text_of(data.validate()._repr_html_())
    assert "Dataset statistics" in text_of(data.stats()._repr_html_())


def test_cost_estimate_with_and_without_price() -> None:
    priced = CostEstimate(
        model=HOSTILE,
        base_model="gpt-4o-mini",
        n_examples=10,
        n_epochs=3,
        n_epochs_source="default",
        billable_tokens=1_000,
        trained_tokens=3_000,
        price_per_mtok=3.0,
        usd=0.009,
        price_date=dt.date(2026, 1, 1),
        price_source="catalog",
    )
    unpriced = priced.model_copy(
        update={"usd": None, "price_per_mtok": None, "note": QUOTED, "price_source": "unknown"}
    )

    priced_text = text_of(priced._repr_html_())
    assert "at most $0.01 (prices as of 2026-01-01)" in priced_text
    assert HOSTILE in priced_text
    assert "3 (default)" in priced_text
    assert f"no price known ({QUOTED})" in text_of(unpriced._repr_html_())


# --- classification and evaluation ---------------------------------------------------------------


def test_classification_bars_sorted_by_probability() -> None:
    result = Classification(
        label=HOSTILE,
        probabilities={"dog": 0.25, HOSTILE: 0.75},
        probability_outside=0.01,
        confidence=0.75,
        technique="logit_bias",
        model=QUOTED,
    )

    markup = result._repr_html_()
    text = text_of(markup)

    assert text.index(f"{HOSTILE}75.0%") < text.index("dog25.0%")
    assert "width: 75.0%" in markup
    assert "probability outside the labels: 1.0%" in text
    assert QUOTED in text


def test_abstained_classification() -> None:
    result = Classification(label=None, technique="prompt", model="m")

    assert "abstained" in text_of(result._repr_html_())


@pytest.fixture
def evaluation() -> Evaluation:
    golds = [HOSTILE, HOSTILE, "dog", "dog", "dog"]
    return Evaluation.from_predictions(golds, [HOSTILE, "dog", "dog", "dog", None], model=QUOTED)


def test_evaluation_metrics_and_shaded_confusion(evaluation: Evaluation) -> None:
    markup = evaluation._repr_html_()
    text = text_of(markup)

    assert f"Evaluation of {QUOTED} on 5 examples" in text
    assert "accuracy 0.600" in text
    assert "true \\ predicted" in text
    # The busiest cell (dog -> dog, 2) is fully shaded; the two empty cells not at all.
    assert 'rgba(76, 120, 168, 1.00); color: white">2<' in markup
    assert markup.count("rgba(76, 120, 168, 0.00)") == 2


def test_compare_is_the_same_text_with_html_on_top(evaluation: Evaluation) -> None:
    other = Evaluation.from_predictions(["dog"] * 5, ["dog"] * 5, model="base")

    result = compare(other, evaluation)

    assert isinstance(result, Comparison)
    assert isinstance(result, str)
    assert result.evaluations == (other, evaluation)
    assert result.models == ["base", QUOTED]
    text = text_of(result._repr_html_())
    assert f"F1 {HOSTILE}" in text
    # Bold marks the best of each row; lower is better for the rates.
    assert "<b>1.000</b>" in result._repr_html_()


def test_comparison_notes_different_sizes(evaluation: Evaluation) -> None:
    small = Evaluation.from_predictions(["dog"], ["dog"])

    assert "different numbers of examples" in text_of(compare(evaluation, small)._repr_html_())


# --- jobs --------------------------------------------------------------------------------------


def _rows() -> list[MetricsRow]:
    train = [2.0, 1.5, 1.0, 0.8, 0.6, 0.4]
    valid = [2.1, 1.6, 1.2, 1.3, 1.5, 1.8]
    return [
        MetricsRow(step=i + 1, train_loss=t, valid_loss=v)
        for i, (t, v) in enumerate(zip(train, valid, strict=True))
    ]


def test_metrics_summary_flags_overfitting() -> None:
    summary = summarize_metrics(_rows(), n_epochs=3)

    text = text_of(summary._repr_html_())

    assert summary.overfitting
    assert text.startswith("Training metricsoverfitting")
    assert "1.7500" in text  # epoch 1 mean training loss
    assert "1.6500" in text  # epoch 3 mean validation loss


def _job(**fields: object) -> Job:
    data = job_json()
    data.update(fields)
    raw = FineTuningJob.construct(**data)
    return Job(raw, client=openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1"))


def test_job_card_shows_progress_metrics_checkpoints_and_flag() -> None:
    job = _job(
        status="running",
        model=HOSTILE,
        hyperparameters={"n_epochs": 3},
        error={"code": None, "message": None, "param": None},
    )
    events = [
        Event(id="e1", created_at=1, level="info", message=HOSTILE),
        Event(
            id="e2",
            created_at=2,
            level="info",
            message="Step 4/6",
            type="metrics",
            data={"step": 4, "total_steps": 6, "train_loss": 0.8123, "valid_loss": None},
        ),
    ]
    ckpt = checkpoint(2, f"ft:{HOSTILE}", full_valid_loss=1.6)
    summary = summarize_metrics(_rows(), n_epochs=3)

    markup = job_parts(job, events=events, checkpoints=[ckpt], summary=summary)
    text = text_of(markup)

    assert text.startswith("Fine-tuning job ftjob-1running supervised fine-tuning of")
    assert HOSTILE in text
    assert "step 4 of 6" in text
    assert "width: 66.7%" in markup
    assert "train_loss0.8123" in text
    assert "valid_loss" not in text  # no value, no row
    assert "error" not in text  # an all-null error is no error
    assert f"ft:{HOSTILE}:ckpt-step-2" in text
    assert "overfitting" in text


def test_failed_job_card_shows_the_error() -> None:
    job = _job(status="failed", error={"code": "invalid_file", "message": QUOTED, "param": None})

    text = text_of(job_parts(job))

    assert f"invalid_file: {QUOTED}" in text


def test_an_async_jobs_card_shows_what_it_knows_without_a_request() -> None:
    # The display hook cannot await: nothing is fetched (port 9 would refuse), nothing raised.
    data = {**job_json(), "status": "failed", "model": HOSTILE}
    data["error"] = {"code": "invalid_file", "message": QUOTED, "param": None}
    client = openai.AsyncOpenAI(api_key="sk-test-secret", base_url="http://127.0.0.1:9/v1")
    job = AsyncJob(FineTuningJob.construct(**data), client=client)

    markup = job._repr_html_()
    text = text_of(markup)

    assert text.startswith("Fine-tuning job ftjob-1failed supervised fine-tuning of")
    assert HOSTILE in text
    assert f"invalid_file: {QUOTED}" in text
    assert "await job.events()" in text
    assert "sk-test-secret" not in markup


def test_job_repr_html_fetches_what_it_shows(
    clocked_server: LocalServer, clock: RecordingClock
) -> None:
    client = clocked_server.client()
    data = Dataset.from_labels([f"text number {i}" for i in range(20)], ["a", "b"] * 10)
    train, held_out = data.split(test_size=0.25, seed=0)
    job = Job.create(
        train, model="gpt-4o-mini", validation=held_out, client=client, retry=clock.policy()
    )
    job.wait(progress=False, poll_interval=1.0)

    text = text_of(job._repr_html_())

    assert "succeeded" in text
    assert str(job.fine_tuned_model) in text
    assert "Checkpoints" in text
    assert ":ckpt-step-" in text


def test_job_repr_html_survives_a_failed_fetch(local_server: LocalServer) -> None:
    raw = FineTuningJob.construct(**job_json("ftjob-missing", status="running"))
    job = Job(raw, client=local_server.client(), retry=RetryPolicy.none())

    text = text_of(job._repr_html_())

    assert "Fine-tuning job ftjob-missing" in text
    assert "could not fetch metrics: NotFoundError" in text


def test_comparison_survives_copy_and_pickle(evaluation: Evaluation) -> None:
    result = compare(evaluation)

    for again in (copy.copy(result), copy.deepcopy(result), pickle.loads(pickle.dumps(result))):
        assert isinstance(again, Comparison)
        assert again == result
        assert again.evaluations == (evaluation,)


def test_metrics_summary_names_the_best_checkpoint() -> None:
    best = checkpoint(4, f"ft:m:{HOSTILE}", full_valid_loss=1.2)

    text = text_of(summarize_metrics(_rows(), [best], n_epochs=3)._repr_html_())

    assert f"best checkpoint: ft:m:{HOSTILE}:ckpt-step-4 (step 4)" in text


def test_metrics_summary_without_metrics() -> None:
    text = text_of(summarize_metrics([])._repr_html_())

    assert "no metrics yet" in text
    assert "validation loss" not in text.split("final validation loss")[-1]
