"""The service's size and count limits, read by the SDK and the local backend alike.

Sources: OpenAI's API reference (files: "Individual files can be up to 512 MB"; uploads:
"at most 8 GB in total", "Each Part can be at most 64 MB"), the fine-tuning guide (at least
10 training examples) and the Batch API reference (at most 50,000 requests per batch).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_BATCH_REQUESTS",
    "MAX_FILE_BYTES",
    "MAX_METADATA_PAIRS",
    "MAX_SUFFIX_CHARS",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PART_BYTES",
    "MIN_TRAINING_EXAMPLES",
    "UPLOAD_EXPIRES_SECONDS",
]

#: Largest file the files API accepts (``POST /v1/files``).
MAX_FILE_BYTES: Final = 512 * 1024 * 1024
#: Largest file the uploads API assembles from parts.
MAX_UPLOAD_BYTES: Final = 8 * 1024 * 1024 * 1024
#: Largest part of an upload.
MAX_UPLOAD_PART_BYTES: Final = 64 * 1024 * 1024
#: An upload not completed within this long expires.
UPLOAD_EXPIRES_SECONDS: Final = 3600
#: Fewest examples a training file may hold (validation files have no minimum).
MIN_TRAINING_EXAMPLES: Final = 10
#: Most requests one batch input file may hold.
MAX_BATCH_REQUESTS: Final = 50_000
#: Most key-value pairs a ``metadata`` object may hold.
MAX_METADATA_PAIRS: Final = 16
#: Longest ``suffix`` a fine-tuning job accepts (it becomes part of the model's name).
MAX_SUFFIX_CHARS: Final = 64
