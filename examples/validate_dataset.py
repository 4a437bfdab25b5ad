"""Validate a JSONL training file, print its statistics and the cost estimate.

Usage: python examples/validate_dataset.py train.jsonl [model]
"""

from __future__ import annotations

import sys

from finetune_kit import Dataset


def main(path: str, model: str = "gpt-4.1-mini") -> int:
    dataset = Dataset.from_jsonl(path)
    report = dataset.validate(model=model)
    for problem in report.problems:
        print(problem)
    if not report.ok:
        return 1
    stats = dataset.stats(model=model)
    cost = dataset.estimate_cost(model=model)
    print(f"{stats.n_examples} examples, {stats.total_tokens} tokens")
    print(f"~${cost.usd} for {cost.n_epochs} epochs (prices of {cost.price_date})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
