"""Values worked out once per object: the per-knowledge-base (or per-step) tables the engine
and the planner read on every patient.

A knowledge base is loaded once per process and then only read, so what is derived from it
(column names by option, roots as bit masks, labels) is kept beside it. The object is keyed
by ``id`` and kept with its value, so that an object that replaced a freed one under the
same ``id`` is worked out afresh rather than given the old value.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def per_object(fn: Callable[[Any], T]) -> Callable[[Any], T]:
    """``fn(obj)``, computed the first time it is asked for ``obj`` and then kept."""
    store: dict[int, tuple[Any, T]] = {}

    @functools.wraps(fn)
    def once(obj: Any) -> T:
        got = store.get(id(obj))
        if got is None or got[0] is not obj:
            got = store[id(obj)] = (obj, fn(obj))
        return got[1]

    return once
