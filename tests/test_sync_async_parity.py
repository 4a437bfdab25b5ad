"""Every sync entry point has an async sibling with the same public surface and arguments."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import finetune_kit as fk

CLASS_PAIRS = [
    (fk.Job, fk.AsyncJob),
    (fk.TunedModel, fk.AsyncTunedModel),
    (fk.AzureDeployments, fk.AsyncAzureDeployments),
]
FUNCTION_PAIRS = [
    (fk.classify, fk.aclassify),
    (fk.classify_many, fk.aclassify_many),
    (fk.classify_batch, fk.aclassify_batch),
    (fk.Dataset.upload, fk.Dataset.aupload),
]


def _public(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")} | {
        name for base in cls.__mro__[1:-1] for name in vars(base) if not name.startswith("_")
    }


def _parameters(fn: Any) -> list[tuple[str, Any, Any]]:
    # Names, kinds and defaults; annotations differ on purpose (sync vs async clients).
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(("sync", "async_"), CLASS_PAIRS, ids=lambda c: c.__name__)
def test_classes_offer_the_same_members(sync: type, async_: type) -> None:
    assert _public(sync) == _public(async_)
    assert not issubclass(async_, sync), "the async class must not inherit the sync one"


@pytest.mark.parametrize(("sync", "async_"), CLASS_PAIRS, ids=lambda c: c.__name__)
def test_methods_take_the_same_arguments_and_async_ones_are_coroutines(
    sync: type, async_: type
) -> None:
    for name in sorted(_public(sync)):
        s, a = inspect.getattr_static(sync, name), inspect.getattr_static(async_, name)
        if isinstance(s, property):
            assert isinstance(a, property), name
            continue
        s_fn = s.__func__ if isinstance(s, (classmethod, staticmethod)) else s
        a_fn = a.__func__ if isinstance(a, (classmethod, staticmethod)) else a
        assert _parameters(s_fn) == _parameters(a_fn), name
        if inspect.iscoroutinefunction(a_fn):
            assert not inspect.iscoroutinefunction(s_fn), name


@pytest.mark.parametrize(("sync", "async_"), FUNCTION_PAIRS, ids=lambda f: f.__name__)
def test_functions_take_the_same_arguments(sync: Any, async_: Any) -> None:
    assert inspect.iscoroutinefunction(async_)
    assert not inspect.iscoroutinefunction(sync)
    assert _parameters(sync) == _parameters(async_)
