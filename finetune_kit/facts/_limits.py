"""Size and count limits of the service's training files, in one place.

The dataset checks (``large_file``, ``file_too_large``, ``too_few_examples``) and the upload
(which API to use, how large each part is) read them from here, so a limit can never be
checked against one number and enforced against another.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FILES_API_MAX_BYTES",
    "MIN_TRAINING_EXAMPLES",
    "UPLOADS_API_MAX_BYTES",
    "UPLOAD_PART_BYTES",
]

#: Largest file the Files API (``POST /files``) takes in one request: 512 MB.
FILES_API_MAX_BYTES: Final = 512 * 1024**2
#: Largest file the Uploads API (``POST /uploads``) assembles: 8 GB.
UPLOADS_API_MAX_BYTES: Final = 8 * 1024**3
#: Size of each part sent to the Uploads API (the service takes parts of at most 64 MB).
UPLOAD_PART_BYTES: Final = 64 * 1024**2
#: The service's minimum number of examples in a training file.
MIN_TRAINING_EXAMPLES: Final = 10
