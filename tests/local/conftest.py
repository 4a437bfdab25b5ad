"""The local backend's tests use the shared fixtures in ``tests/conftest.py``:

``local_server`` (in memory, 100x speed, real clock), ``clock`` (a
:class:`~finetune_kit.local.ManualClock` that moves only when advanced or "slept" on) and
``clocked_server`` (a server on that clock).
"""
