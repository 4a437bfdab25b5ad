"""Peak memory of uploading and splitting a large file, against baselines measured in the same run.

Generates N chat examples (default 1,000,000: about 1.4 GB) into a temporary JSONL file, then
runs each contestant in a fresh process and reports its peak resident memory (ru_maxrss):

1. floor: the interpreter with finetune_kit imported and a client built (what every contestant
   carries before it touches the file);
2. ``Dataset.upload`` to an in-process fake of the files and uploads endpoints (an HTTP
   transport that reads each request body as a stream and keeps only its hash), through the
   Files API or, for files over 512 MB, the Uploads API in 64 MB parts;
3. ``Dataset.split`` into two files;
4. with ``--old``, the old way of uploading: the file read whole and hashed (what
   ``Dataset.upload`` did before it streamed), for scale.

Targets for 1M examples: upload under 200 MiB, split under 300 MiB.

    python benchmarks/upload_split_memory.py                   # 1M examples, a few minutes
    python benchmarks/upload_split_memory.py --n 100000 --old
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PROSE = (
    "the model answers questions about orders refunds shipping delays accounts passwords "
    "invoices and product details clearly politely with short helpful sentences"
)
_WORDS = tuple(_PROSE.split(" "))

_PRELUDE = """
import importlib, json, resource, sys
import openai
from finetune_kit import Dataset
http = importlib.import_module("httpx2" if int(openai.__version__.split(".")[0]) >= 3 else "httpx")
"""

_FLOOR = (
    _PRELUDE
    + """
client = openai.OpenAI(api_key="sk-bench", base_url="http://fake.invalid/v1")
"""
)

# An in-process service: bodies are consumed as streams (hashed, counted), never kept.
_UPLOAD = (
    _PRELUDE
    + """
import hashlib, re

class Fake(http.BaseTransport):
    def __init__(self):
        self.files, self.uploads, self.parts = [], {}, {}
        self.received = 0

    def _drain(self, request):
        digest, size, head = hashlib.sha256(), 0, b""
        for chunk in request.stream:
            if len(head) < 4096:
                head += chunk[:4096]
            digest.update(chunk)
            size += len(chunk)
        self.received += size
        return head, size

    def handle_request(self, request):
        path, method = request.url.path, request.method
        if method == "GET" and path.endswith("/files"):
            return http.Response(200, json={"object": "list", "data": [], "has_more": False})
        if method == "POST" and path.endswith("/files"):
            head, size = self._drain(request)
            name = re.search(rb'filename="([^"]+)"', head).group(1).decode()
            return http.Response(200, json=self._file(name, size))
        if method == "POST" and path.endswith("/uploads"):
            body = json.loads(request.read())
            upload = {"id": f"upload-{len(self.uploads) + 1}", "object": "upload",
                      "bytes": body["bytes"], "created_at": 1, "expires_at": 3601,
                      "filename": body["filename"], "purpose": body["purpose"],
                      "status": "pending", "file": None}
            self.uploads[upload["id"]] = upload
            return http.Response(200, json=upload)
        if path.endswith("/parts"):
            upload_id = path.split("/")[-2]
            _, size = self._drain(request)
            part_id = f"part-{len(self.parts) + 1}"
            self.parts[part_id] = size
            return http.Response(200, json={"id": part_id, "object": "upload.part",
                                            "created_at": 1, "upload_id": upload_id})
        if path.endswith("/complete"):
            upload = self.uploads[path.split("/")[-2]]
            upload.update(status="completed", file=self._file(upload["filename"], upload["bytes"]))
            return http.Response(200, json=upload)
        return http.Response(404, json={"error": {"message": path}})

    def _file(self, name, size):
        file = {"id": f"file-{len(self.files) + 1}", "object": "file", "bytes": size,
                "created_at": 1, "filename": name, "purpose": "fine-tune", "status": "processed"}
        self.files.append(file)
        return file

fake = Fake()
client = openai.OpenAI(api_key="sk-bench", base_url="http://fake.invalid/v1",
                       http_client=http.Client(transport=fake))
file_id = Dataset.from_jsonl(sys.argv[1]).upload(client=client, validate=False)
api = "uploads" if fake.parts else "files"
print(json.dumps({"file_id": file_id, "api": api, "parts": len(fake.parts),
                  "received": fake.received}))
"""
)

_SPLIT = (
    _PRELUDE
    + """
train, valid = Dataset.from_jsonl(sys.argv[1]).split(0.2, seed=0, into=(sys.argv[2], sys.argv[3]))
print(json.dumps({"train": len(train), "validation": len(valid)}))
"""
)

_OLD_UPLOAD = (
    _PRELUDE
    + """
import hashlib
data = open(sys.argv[1], "rb").read()  # what upload did before: the whole file in memory
print(json.dumps({"sha256": hashlib.sha256(data).hexdigest()[:12], "bytes": len(data)}))
"""
)

_REPORT = """
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def generate(path: Path, n: int, *, seed: int = 0) -> None:
    """``n`` chat examples of about 1.4 KB each, with 20 labels (so splitting stratifies)."""
    rng = random.Random(seed)
    labels = [f"label_{k}" for k in range(20)]
    # A pool of texts, each example a different mix: generating stays fast, examples distinct.
    pool = [" ".join(rng.choice(_WORDS) for _ in range(85)) for _ in range(1000)]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            record = {
                "messages": [
                    {"role": "system", "content": "Classify the customer's message."},
                    {
                        "role": "user",
                        "content": f"Ticket {i}: {rng.choice(pool)} {rng.choice(pool)}",
                    },
                    {"role": "assistant", "content": rng.choice(labels)},
                ]
            }
            out.write(json.dumps(record) + "\n")


def measure(code: str, *args: str) -> tuple[float, str, float]:
    """Peak RSS (MiB) of a fresh process running ``code``, its output, and its seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + _REPORT, *args], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    lines = done.stdout.strip().splitlines()
    return int(lines[-1]) / 1024, "\n".join(lines[:-1]), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples (default 1,000,000)")
    parser.add_argument("--old", action="store_true", help="also measure the file read whole")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        start = time.perf_counter()
        generate(path, args.n)
        size = path.stat().st_size
        print(
            f"{args.n:,} examples, {size / 2**20:,.0f} MiB, generated in "
            f"{time.perf_counter() - start:.0f}s"
        )
        floor, _, _ = measure(_FLOOR)
        print(f"  floor (imports and a client):        {floor:7.0f} MiB")
        upload, out, secs = measure(_UPLOAD, str(path))
        print(f"  Dataset.upload:                      {upload:7.0f} MiB  ({secs:.0f}s, {out})")
        split, out, secs = measure(_SPLIT, str(path), f"{tmp}/t.jsonl", f"{tmp}/v.jsonl")
        print(f"  Dataset.split into two files:        {split:7.0f} MiB  ({secs:.0f}s, {out})")
        print(
            f"  upload: {upload / floor:.2f}x the floor, {upload - floor:.0f} MiB above it "
            f"(target < 200 MiB in all); {'ok' if upload < 200 else 'OVER'}"
        )
        print(
            f"  split:  {split / floor:.2f}x the floor, {split - floor:.0f} MiB above it "
            f"(target < 300 MiB in all); {'ok' if split < 300 else 'OVER'}"
        )
        if args.old:
            old, out, _ = measure(_OLD_UPLOAD, str(path))
            print(
                f"  old upload (file read whole):        {old:7.0f} MiB  ({out}); "
                f"{old / upload:.1f}x the streamed upload"
            )


if __name__ == "__main__":
    main()
