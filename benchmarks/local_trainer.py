"""How well and how fast the local backend's built-in trainer learns, end to end.

Data: ``benchmarks/data/langid.tsv``, short sentences in 15 languages with a fixed held-out
split (see ``benchmarks/data/README.md`` for provenance and licence).

Measured in one run, each next to its baseline:

1. **Held-out accuracy through the API**: upload the training split to a
   :class:`~finetune_kit.local.LocalServer`, fine-tune ``gpt-4o-mini`` there, wait, then ask
   the tuned model about every held-out sentence with plain ``client.chat.completions.create``:
   ``logit_bias`` +100 on the first token of each language code, ``max_tokens=1``,
   ``temperature=0`` (target: at least 85 %). The base model is asked the same way. Baseline:
   a 20-line multinomial Naive Bayes over character 1-4-grams of the sentence, computed here.
2. **Training time**: CPU seconds of the built-in trainer on the same examples, next to the
   Naive Bayes reference's (fitting and predicting).
3. **``finetune-kit demo``**: wall time of the whole command in a fresh process (target:
   under 10 s) and the accuracies it prints (target: at least 15.2 % base -> 87.6 % tuned).

Usage: ``python benchmarks/local_trainer.py [--skip-demo]``
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from finetune_kit.facts._tokens import encoding_for_model
from finetune_kit.local import LocalServer
from finetune_kit.local._trainer import Hyperparameters, LinearTrainer, TrainingExample

if TYPE_CHECKING:
    import openai

DATA = Path(__file__).parent / "data" / "langid.tsv"
MODEL = "gpt-4o-mini"
SYSTEM = "Identify the language of the user's message. Answer with its ISO 639-1 code."


def load() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(train, test)`` lists of ``(text, language code)``."""
    rows = list(csv.DictReader(io.StringIO(DATA.read_text(encoding="utf-8")), delimiter="\t"))
    train = [(r["text"], r["language"]) for r in rows if r["split"] == "train"]
    test = [(r["text"], r["language"]) for r in rows if r["split"] == "test"]
    return train, test


def messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def naive_bayes(train: list[tuple[str, str]], test: list[tuple[str, str]]) -> float:
    """Accuracy of multinomial Naive Bayes over character 1-4-grams (add-one smoothing)."""

    def grams(text: str) -> list[str]:
        t = " " + " ".join(text.lower().split()) + " "
        return [t[i : i + n] for n in range(1, 5) for i in range(len(t) - n + 1)]

    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    prior: collections.Counter[str] = collections.Counter()
    for text, label in train:
        counts[label].update(grams(text))
        prior[label] += 1
    vocab = len({g for c in counts.values() for g in c})
    totals = {label: sum(c.values()) + vocab for label, c in counts.items()}

    def score(label: str, gs: list[str]) -> float:
        c, t = counts[label], totals[label]
        return math.log(prior[label]) + sum(math.log((c[g] + 1) / t) for g in gs)

    right = sum(max(counts, key=lambda lab: score(lab, grams(x))) == y for x, y in test)
    return right / len(test)


def api_accuracy(
    client: openai.OpenAI, model: str, test: list[tuple[str, str]], labels: list[str]
) -> float:
    """Share of ``test`` answered right through plain chat.completions with logit_bias."""
    enc = encoding_for_model(MODEL)
    first = {enc.encode(label)[0]: label for label in labels}
    if len(first) != len(labels):
        raise SystemExit("two labels share a first token; pick other label spellings")
    bias = {str(token): 100 for token in first}
    right = 0
    for text, label in test:
        reply = client.chat.completions.create(
            model=model,
            messages=messages(text),  # type: ignore[arg-type]
            logit_bias=bias,
            max_tokens=1,
            temperature=0,
        )
        content = reply.choices[0].message.content or ""
        tokens = enc.encode(content)
        right += bool(tokens) and first.get(tokens[0]) == label
    return right / len(test)


def fine_tune(client: openai.OpenAI, train: list[tuple[str, str]]) -> tuple[str, float]:
    """Upload, fine-tune, wait; the tuned model's name and the job's wall time."""
    lines = [
        json.dumps({"messages": [*messages(x), {"role": "assistant", "content": y}]})
        for x, y in train
    ]
    started = time.perf_counter()
    upload = client.files.create(
        file=("langid.jsonl", ("\n".join(lines) + "\n").encode()), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload.id, seed=7)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.05)
        job = client.fine_tuning.jobs.retrieve(job.id)
    if job.status != "succeeded" or job.fine_tuned_model is None:
        raise SystemExit(f"fine-tuning ended {job.status}: {job.error}")
    return job.fine_tuned_model, time.perf_counter() - started


def train_seconds(train: list[tuple[str, str]]) -> tuple[float, float]:
    """CPU seconds of the built-in trainer and of the Naive Bayes reference on ``train``."""
    examples = [TrainingExample(f"{SYSTEM}\n{x}", y) for x, y in train]
    size = max(1, min(256, math.ceil(len(examples) * 0.002)))
    started = time.process_time()
    LinearTrainer().train(examples, hyperparameters=Hyperparameters(3, size), seed=7)
    ours = time.process_time() - started
    started = time.process_time()
    naive_bayes(train, train[:1])
    return ours, time.process_time() - started


def demo() -> tuple[float, dict[str, object]]:
    """Wall seconds of ``finetune-kit demo --json`` in a fresh process, and its summary."""
    started = time.perf_counter()
    # The installed console script, as a user types it (it lives next to this interpreter).
    script = Path(sys.executable).with_name("finetune-kit")
    out = subprocess.run(
        [str(script), "demo", "--json", "--no-progress"],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    summary: dict[str, object] = json.loads(out.stdout)
    return seconds, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-demo", action="store_true", help="do not time the demo")
    args = parser.parse_args()
    train, test = load()
    labels = sorted({y for _, y in train})
    print(f"data: {len(train)} training and {len(test)} held-out sentences, {len(labels)} labels")
    with LocalServer(speed=100) as server:
        client = server.client()
        tuned, job_seconds = fine_tune(client, train)
        base = api_accuracy(client, MODEL, test, labels)
        ours = api_accuracy(client, tuned, test, labels)
    reference = naive_bayes(train, test)
    print(f"held-out accuracy, base {MODEL} (logit_bias)    {base:7.1%}")
    print(f"held-out accuracy, tuned on local backend      {ours:7.1%}   (target >= 85 %)")
    print(f"held-out accuracy, Naive Bayes reference       {reference:7.1%}")
    print(f"tuned / reference                              {ours / reference:7.3f}x")
    print(f"fine-tuning job, upload to succeeded (speed=100) {job_seconds:5.2f} s wall")
    cpu, nb_cpu = train_seconds(train)
    print(f"built-in trainer CPU, 3 epochs                 {cpu:7.2f} s")
    print(f"Naive Bayes reference CPU, fit                 {nb_cpu:7.2f} s ({cpu / nb_cpu:.1f}x)")
    if not args.skip_demo:
        seconds, summary = demo()
        base_acc, tuned_acc = summary.get("base_accuracy"), summary.get("tuned_accuracy")
        print(f"finetune-kit demo wall time                    {seconds:7.2f} s   (target < 10 s)")
        print(f"finetune-kit demo accuracy                     {base_acc} -> {tuned_acc}")


if __name__ == "__main__":
    main()
