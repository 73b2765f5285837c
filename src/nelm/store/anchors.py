"""Signed anchors: the ends of the hash chains, signed with a key the database never sees.

A hash chain (:mod:`.chain`) shows that a stored row was changed, but someone who can
write the database can rebuild the whole chain, append correctly chained rows, or cut the
end off and move ``chain_heads`` back. Anchors pin the chains down from outside:

- **The key** is an Ed25519 private key in a PEM file outside the database:
  ``NELM_ANCHOR_KEY`` (a path), by default ``anchor-key.pem`` in the user's config
  directory, generated on first use with mode 0600 (its public half beside it as
  ``anchor-key.pub``). Ed25519 rather than HMAC so that an auditor can verify with the
  public key alone, which cannot sign; a file readable by group or others is refused.
- **The anchors file** is an append-only JSON Lines file outside the database:
  ``NELM_ANCHORS`` (a path), by default ``anchors.jsonl`` beside the key. Every write to
  the store appends one signed *checkpoint* line — the ``(id, row_hash)`` of the last row
  it appended to each chain — before its transaction commits (under the chain's lock, so
  lines come in chain order), and one signed *confirm* line after the commit. A line
  names the store (a random id made by migration 0003_anchors), its URL (no password),
  the migration it was written under and the key's id.

Verifying against the anchors (:func:`verify_anchored`, ``nelm audit verify --anchors``):
after the plain chain check, each table's stored rows must agree with every signed
checkpoint: a stored row whose hash differs from the last signed one for its id is a
**rewrite**; a confirmed checkpoint for a row the table no longer has is a
**truncation**; a last row that no checkpoint signed is a **forged append** (rows added
outside nelm); ``chain_heads`` behind the last confirmed checkpoint is a **backdated
head**. A checkpoint never confirmed whose row is absent is a transaction that did not
commit (a crash or a rollback) and is reported, not counted as a break.

What anchors do not prove: that the anchors file itself is complete (someone who can
delete lines from it, and the database's matching rows, goes unnoticed: keep a copy
elsewhere, or add a write-once :class:`AnchorSink`), nor anything about a store written
while the key was in someone else's hands.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from platformdirs import user_config_dir

KEY_ENV = "NELM_ANCHOR_KEY"
ANCHORS_ENV = "NELM_ANCHORS"
KEY_NAME = "anchor-key.pem"
ANCHORS_NAME = "anchors.jsonl"
FORMAT = 1
KINDS = ("checkpoint", "confirm", "adopt", "override")


class AnchorError(RuntimeError):
    """The anchors cannot be used: no key, a key others can read, an unreadable file."""


# ------------------------------------------------------------------ where things live

def config_dir() -> Path:
    return Path(user_config_dir("nelm", appauthor=False))


def key_path() -> Path:
    value = os.environ.get(KEY_ENV, "").strip()
    return Path(value).expanduser() if value else config_dir() / KEY_NAME


def anchors_path() -> Path:
    value = os.environ.get(ANCHORS_ENV, "").strip()
    return Path(value).expanduser() if value else key_path().parent / ANCHORS_NAME


# ------------------------------------------------------------------ the key

def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AnchorError(f"the anchor key {path} is readable by others (mode {stat.filemode(mode)}); "
                          f"run `chmod 600 {path}`")


def load_signing_key(path: Path | None = None, *, create: bool = True) -> Ed25519PrivateKey:
    """The private key at ``path`` (default :func:`key_path`), generated there (0600, with
    the public key beside it) when absent and ``create``."""
    path = path or key_path()
    if not path.exists():
        if not create:
            raise AnchorError(f"no anchor key at {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile: use that one
            return load_signing_key(path, create=False)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        public = path.with_suffix(".pub")
        if not public.exists():
            public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
        return key
    _check_private(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise AnchorError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorError(f"{path} is not an Ed25519 key")
    return key


def load_verify_key(path: Path | None = None) -> Ed25519PublicKey:
    """The public key to verify with: from a public PEM file, or from the private key."""
    path = path or key_path()
    if not path.exists():
        raise AnchorError(f"no anchor key at {path} (set {KEY_ENV}, or pass --key)")
    data = path.read_bytes()
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError:
        return load_signing_key(path, create=False).public_key()
    if not isinstance(public, Ed25519PublicKey):
        raise AnchorError(f"{path} is not an Ed25519 key")
    return public


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _signed_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# ------------------------------------------------------------------ writing

class AnchorSink(Protocol):
    """Somewhere a signed line is written: the local file, or (not built here) a remote
    write-once target such as an object store with a retention lock or a syslog server."""

    def write(self, line: bytes, *, durable: bool) -> None: ...


class FileSink:
    """Appends lines to a local file (O_APPEND, one write per line, under an flock so that
    several processes never interleave; fsync when ``durable``)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def write(self, line: bytes, *, durable: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                end = os.lseek(fd, 0, os.SEEK_END)
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    line = b"\n" + line  # after a line a crash cut off: keep ours whole
                if os.write(fd, line) != len(line):  # a full disk: refuse the write it anchors
                    raise OSError(f"short write to {self.path}")
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)


@dataclass
class Anchorer:
    """Signs and appends the lines of one store."""

    key: Ed25519PrivateKey
    store: str
    url: str
    revision: str
    sinks: list[AnchorSink] = field(default_factory=list)

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key())

    def _line(self, kind: str, heads: Mapping[str, tuple[int, str]], note: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "format": FORMAT, "kind": kind, "store": self.store, "url": self.url, "revision": self.revision,
            "key": self.key_id, "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "heads": {t: [int(i), h] for t, (i, h) in sorted(heads.items())}}
        if note:
            body["note"] = note
        body["sig"] = base64.b64encode(self.key.sign(_signed_bytes(body))).decode("ascii")
        return (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")

    def write(self, kind: str, heads: Mapping[str, tuple[int, str]], note: str | None = None) -> None:
        line = self._line(kind, heads, note)
        for sink in self.sinks:
            # the checkpoint must be on disk before the commit; a lost confirm only weakens
            # the truncation check of that one transaction
            sink.write(line, durable=kind != "confirm")


# ------------------------------------------------------------------ reading

@dataclass(frozen=True)
class Line:
    number: int
    kind: str
    store: str
    url: str
    revision: str
    key: str
    at: str
    heads: dict[str, tuple[int, str]]
    note: str | None = None


@dataclass(frozen=True)
class AnchorFile:
    path: Path
    lines: tuple[Line, ...]
    bad: tuple[tuple[int, str], ...]  # (line number, why) for lines that do not verify
    # lines that are not JSON at all: what a crash in the middle of a write leaves. They
    # vouch for nothing, so a checkpoint lost in one shows as a row never signed.
    unreadable: tuple[int, ...] = ()

    def of_store(self, store: str) -> list[Line]:
        return [ln for ln in self.lines if ln.store == store]

    def of_url(self, url: str) -> list[Line]:
        return [ln for ln in self.lines if ln.url == url]


def read(path: Path, public: Ed25519PublicKey) -> AnchorFile:
    """Every line of the anchors file whose signature verifies with ``public``; the others
    in ``bad`` (edited, forged, signed with another key, or cut off by a crash: a last
    line without its newline)."""
    try:
        with path.open("rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # no line half-written by a writer holding LOCK_EX
            data = f.read()
    except FileNotFoundError:
        return AnchorFile(path, (), ())
    except OSError as exc:
        raise AnchorError(f"cannot read the anchors file {path}: {exc}") from None
    good, bad, unreadable = [], [], []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            body = json.loads(raw)
        except ValueError:
            unreadable.append(number)
            continue
        try:
            sig = base64.b64decode(body.pop("sig"), validate=True)
            public.verify(sig, _signed_bytes(body))
            line = Line(number=number, kind=str(body["kind"]), store=str(body["store"]), url=str(body["url"]),
                        revision=str(body["revision"]), key=str(body["key"]), at=str(body["at"]),
                        heads={str(t): (int(v[0]), str(v[1])) for t, v in body["heads"].items()},
                        note=body.get("note"))
        except InvalidSignature:
            bad.append((number, "the signature does not verify (edited, forged, or signed with another key)"))
            continue
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            bad.append((number, f"not a signed checkpoint ({type(exc).__name__})"))
            continue
        if line.kind not in KINDS:
            bad.append((number, f"unknown kind {line.kind!r}"))
            continue
        good.append(line)
    return AnchorFile(path, tuple(good), tuple(bad), tuple(unreadable))


def exists(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def heads_of(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, tuple[int, str]]:
    """The last written (id, row_hash) of each chained table among ``rows``."""
    out: dict[str, tuple[int, str]] = {}
    for table, row in rows:
        if table not in out or row["id"] > out[table][0]:
            out[table] = (int(row["id"]), str(row["row_hash"]))
    return out
