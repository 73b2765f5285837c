"""The compiled-knowledge cache (nelm.cache): a hit gives what was built, anything wrong rebuilds."""
from __future__ import annotations

import pickle

import pytest

from nelm import cache


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NELM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NELM_CACHE", raising=False)
    return tmp_path


def _counting(value):
    calls = []

    def build():
        calls.append(1)
        return value
    return build, calls


def test_second_read_is_a_hit(cache_dir):
    build, calls = _counting({"a": 1})
    assert cache.cached("t", "k1", build) == {"a": 1}
    assert cache.cached("t", "k1", build) == {"a": 1}
    assert len(calls) == 1
    assert len(list(cache_dir.glob("t-*.pickle"))) == 1


def test_another_key_is_a_miss(cache_dir):
    build, calls = _counting([1])
    cache.cached("t", "k1", build)
    cache.cached("t", "k2", build)
    assert len(calls) == 2


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage", pickle.dumps("no tuple")])
def test_a_damaged_entry_is_rebuilt_and_rewritten(cache_dir, damage):
    build, calls = _counting("value")
    cache.cached("t", "k", build)
    (entry,) = cache_dir.glob("t-*.pickle")
    entry.write_bytes(damage)
    assert cache.cached("t", "k", build) == "value"
    assert len(calls) == 2
    assert cache.cached("t", "k", build) == "value" and len(calls) == 2, "rewritten after the rebuild"


def test_an_entry_for_another_key_under_the_same_name_is_not_used(cache_dir):
    build, calls = _counting("mine")
    cache.cached("t", "k", build)
    (entry,) = cache_dir.glob("t-*.pickle")
    entry.write_bytes(pickle.dumps(("other key", "theirs")))
    assert cache.cached("t", "k", build) == "mine"


def test_cache_off(cache_dir, monkeypatch):
    monkeypatch.setenv("NELM_CACHE", "0")
    build, calls = _counting(3)
    cache.cached("t", "k", build)
    cache.cached("t", "k", build)
    assert len(calls) == 2 and not list(cache_dir.iterdir())


def test_an_unwritable_cache_directory_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("NELM_CACHE_DIR", str(blocker / "sub"))  # a directory under a file cannot exist
    build, calls = _counting(4)
    assert cache.cached("t", "k", build) == 4
    assert cache.cached("t", "k", build) == 4


def test_knowledge_base_from_the_cache_equals_a_fresh_build(cache_dir):
    from nelm.knowledge import _load, content_hash

    fresh = _load(None)
    cached = cache.cached("knowledge", f"{content_hash()}|", lambda: _load(None))
    again = cache.cached("knowledge", f"{content_hash()}|", lambda: pytest.fail("should be a hit"))
    for kb in (cached, again):
        assert kb.sha256 == fresh.sha256 and kb.version == fresh.version
        assert [[n.column for n in b] for b in kb.nodes] == [[n.column for n in b] for b in fresh.nodes]
        assert [o.model_dump() for o in kb.options] == [o.model_dump() for o in fresh.options]
        assert kb.assume_sql == fresh.assume_sql
        assert {k: v.model_dump() for k, v in kb.evidence.items()} == {k: v.model_dump() for k, v in fresh.evidence.items()}
