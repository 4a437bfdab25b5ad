"""The local backend's tests use the shared fixtures in ``tests/conftest.py``:

``clock`` (a :class:`~finetune_kit.local.ManualClock` that moves only when advanced or
"slept" on), ``clocked_server`` (an in-process server on that clock) and ``local_server``
(the same at 100x speed). Tests about sockets, uvicorn and ``finetune-kit serve`` start
their own loopback servers.
"""
