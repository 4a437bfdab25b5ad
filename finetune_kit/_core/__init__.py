"""The small core: client resolution, request effects, the run loops, retries, progress."""
