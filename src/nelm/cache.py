"""A compiled-knowledge cache on disk, keyed by the knowledge base's content hash.

Reading and validating ~40 YAML files and compiling ~500 conditions takes longer than
assessing a patient; ``nelm assess`` is a fresh process each time. What that work
produces (the validated knowledge base, the one-row code of :mod:`nelm.rowcode`, the
outcome matcher) is pickled once into the user cache directory and read back while the
key still matches: the knowledge base's content hash, the nelm version, the Python
version and a hash of nelm's own source files. Any problem reading an entry (missing, truncated, written by another version,
unpicklable) is a cache miss: the entry is rebuilt from the YAML and rewritten. The
cache is an optimisation only; ``NELM_CACHE=0`` turns it off, ``NELM_CACHE_DIR`` moves it.

Only this program writes these files, under the user's own cache directory; a file
another user could write there is no more trusted than the installed code itself.
"""
from __future__ import annotations

import hashlib
import os
import pickle  # noqa: S403  # nosec B403 - our own files in the user's cache directory, see the module docstring
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar

from . import __version__

T = TypeVar("T")


def cache_dir() -> Path | None:
    if os.environ.get("NELM_CACHE", "1") in ("0", "", "no", "false"):
        return None
    where = os.environ.get("NELM_CACHE_DIR")
    if where:
        return Path(where)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("nelm", appauthor=False))


_CODE: list[str] = []


def code_fingerprint() -> str:
    """Hash of nelm's own source files: what a cached object was built by is part of its key,
    so an edited loader never meets an entry an older one wrote (read once per process)."""
    if not _CODE:
        h = hashlib.sha256()
        package = Path(__file__).resolve().parent
        for path in sorted(package.rglob("*.py")):
            h.update(path.relative_to(package).as_posix().encode())
            h.update(path.read_bytes())
        _CODE.append(h.hexdigest())
    return _CODE[0]


def _path(kind: str, key: str) -> Path | None:
    base = cache_dir()
    if base is None:
        return None
    full = f"{kind}|{key}|{__version__}|{sys.version_info[:3]}|{code_fingerprint()}"
    return base / f"{kind}-{hashlib.sha256(full.encode()).hexdigest()[:32]}.pickle"


def cached(kind: str, key: str, build: Callable[[], T]) -> T:
    """``build()``'s result, read from the cache when an entry for (kind, key) exists."""
    path = _path(kind, key)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                stored_key, value = pickle.load(fh)  # noqa: S301  # nosec B301 - written by this program into the user's own cache directory
            if stored_key == key:
                return value
        except Exception:  # noqa: BLE001, S110  # nosec B110 - any failure is a miss: rebuilt below
            pass
    value = build()
    if path is not None:
        _write(path, (key, value))
    return value


def has(kind: str, key: str) -> bool:
    """Is there an entry for (kind, key)? (Whether a piece of work was done already.)"""
    path = _path(kind, key)
    return path is not None and path.is_file()


def _write(path: Path, payload: Any) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # noqa: BLE001, S110  # nosec B110 - read-only home, full disk: run without the cache
        pass
