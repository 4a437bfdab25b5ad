"""`finetune-kit validate FILE [--model M] [--json]`: output and exit codes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit.cli._dataset import JSON_SCHEMA_VERSION
from finetune_kit.cli._main import main

if TYPE_CHECKING:
    from pathlib import Path


def example(i: int, label: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Classify the review."},
            {"role": "user", "content": f"Review number {i}"},
            {"role": "assistant", "content": label},
        ]
    }


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    rows = [example(i, ("positive", "negative")[i % 2]) for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    rows = [json.dumps(example(i, f"answer {i}")) for i in range(12)]
    rows[3] = "{not json"
    rows[5] = json.dumps({"messages": [{"role": "user", "content": "Hi"}]})
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("file", "options", "code", "shown"),
    [
        pytest.param(
            "good_file",
            ["--model", "gpt-4.1-mini"],
            0,
            [
                "{path}: 12 chat examples · model gpt-4.1-mini\nOK: 0 errors, 0 warnings\n",
                "Tokens (o200k_base, training context 65,536 per example)",
                "Labels (2): negative 6 · positive 6",
                "Cost (gpt-4.1-mini, prices as of 2026-11-01)",
                "8 epochs (the service's default)",
                "at most $",
            ],
            id="valid: exit 0, stats and cost",
        ),
        pytest.param(
            "bad_file",
            [],
            1,
            [
                "FAILED: 2 errors, 1 warning",
                "  line 4      invalid_json",
                "  line 6      missing_assistant  messages has no assistant message",
                "Cost: pass --model to estimate it",
            ],
            id="errors: exit 1, line code message",
        ),
    ],
)
def test_validate_prints_the_verdict_and_exits_with_it(
    file: str,
    options: list[str],
    code: int,
    shown: list[str],
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path: Path = request.getfixturevalue(file)
    assert main(["validate", str(path), *options]) == code
    out = capsys.readouterr().out
    for text in shown:
        assert text.format(path=path) in out
    if code == 0:  # the verdict comes first, right after the file's name
        assert out.startswith(shown[0].format(path=path))


def test_many_problems_of_one_code_are_summarised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text("nope\n" * 30)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("invalid_json  the line is not valid JSON") == 5
    assert "... and 25 more invalid_json" in out


def test_json_output_is_stable(bad_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(bad_file), "--json", "--model", "gpt-4o-mini"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert list(payload) == [
        "schema_version",
        "file",
        "ok",
        "n_errors",
        "n_warnings",
        "report",
        "stats",
        "cost",
    ]
    assert payload["schema_version"] == JSON_SCHEMA_VERSION
    assert payload["ok"] is False
    assert [(p["line"], p["code"], p["severity"]) for p in payload["report"]["problems"]] == [
        (None, "missing_system", "warning"),
        (4, "invalid_json", "error"),
        (6, "missing_assistant", "error"),
    ]
    assert payload["stats"]["tokens_per_example"].keys() == {
        "count",
        "min",
        "mean",
        "p10",
        "p50",
        "p90",
        "max",
    }
    assert payload["cost"]["price_date"] == "2026-11-01"
    assert payload["cost"]["n_epochs"] == 9  # 11 examples parse: 100 // 11


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    assert "FILE" in capsys.readouterr().err


def test_unknown_model_warning_goes_to_stderr(
    good_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(good_file), "--model", "acme-deploy-3", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: Unknown model name 'acme-deploy-3'")
    cost = json.loads(captured.out)["cost"]
    assert cost["usd"] is None
    assert cost["price_source"] == "unknown"


def test_forced_kind(good_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(good_file), "--kind", "preference"]) == 1
    assert "mixed_formats" in capsys.readouterr().out
