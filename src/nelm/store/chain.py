"""Tamper evidence: the audit log and the case versions are hash chains.

Every row of ``case_versions`` and ``audit_log`` carries ``prev_hash``, the ``row_hash``
of the row before it in the same table (64 zeros for the first row), and ``row_hash``,
the SHA-256 of its own content and ``prev_hash``. A row changed, removed or slipped in
behind the database's back (an ``INSERT OR REPLACE`` on SQLite, an edited file, a
restored backup with rows missing) breaks the chain at that row; :func:`verify`
re-computes both chains and reports the first broken link of each. The database
triggers (migrations 0001 and 0002) refuse updates, deletes, REPLACE and rows that do not
link to the end of the chain; the chain catches what gets past them.

Chain format (version 1), for anyone re-computing it without this code:

- A chain is one table, in ascending ``id`` order. Ids are given by the writer, one more
  than the largest so far, while it holds the table's row in ``chain_heads`` locked
  (an ``UPDATE`` of that row first in the transaction: a row lock on PostgreSQL, the
  database's write lock on SQLite), so rows are committed in id order.
- ``row_hash`` = lowercase hex SHA-256 of the UTF-8 bytes of the canonical JSON object
  whose keys are every column of the row except ``row_hash`` (``prev_hash`` included):
  keys sorted by code point, no whitespace (``","`` and ``":"``), strings with non-ASCII
  characters as they are (lone surrogates as their code units), ``null`` for NULL.
  Timestamps are UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. The JSON documents (``patient``,
  ``assessment``) are embedded as canonical JSON values: objects with sorted keys, a
  number that is integral and at most 2**53 in magnitude written as an integer, every
  other number as the shortest decimal that reads back as the same IEEE double (Python's
  ``repr``; an integer too large for a double stays exact), so that SQLite (the JSON text
  as written) and PostgreSQL (jsonb, which gives 1e300 back as 1000...0 and -0.0 as 0.0)
  give the same hash.
- ``chain_heads`` (name, last_id, last_hash) records the end of each chain; a table that
  ends before its recorded head has lost rows at its end.

A hash chain shows that stored rows were changed; it cannot stop someone who can write
the database from rebuilding the whole chain, appending correctly chained rows or cutting
its end off. The signed checkpoints outside the database (:mod:`.anchors`) pin it down:
:func:`verify` with an :class:`AnchorCheck` names such changes (forged append, rewrite,
truncated tail, backdated head). It also checks the ``cases`` table against the versions
(nothing the board sees is read from it any more, see :mod:`.repository`).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, Text, cast, exists, func, inspect, insert, select, update
from sqlalchemy.engine import make_url

from .models import AuditEntry, Case, CaseVersion, ChainHead, StoreIdentity

GENESIS = "0" * 64
# A retention purge (migration 0005_retention) replaces a version's patient and assessment by
# this tombstone and leaves every other column, row_hash included; its audit entry (action
# PURGE_ACTION, detail {"versions": {row id: row_hash}}) vouches for each such row.
TOMBSTONE = {"purged": "retention"}
PURGE_ACTION = "retention_purge"
ALLOW_ENV = "NELM_ALLOW_BROKEN_CHAIN"

_TABLES: dict[str, Table] = {"case_versions": CaseVersion.__table__,  # type: ignore[dict-item]
                             "audit_log": AuditEntry.__table__}  # type: ignore[dict-item]
CHAINED = tuple(_TABLES)
# the hashed columns of each table, besides prev_hash (every column but row_hash)
CONTENT: dict[str, tuple[str, ...]] = {
    "case_versions": ("id", "case_id", "version", "patient", "assessment", "kb_version", "kb_sha256", "created_at"),
    "audit_log": ("id", "at", "actor", "action", "case_id", "version", "detail"),
}
JSON_COLUMNS = frozenset({"patient", "assessment"})
_HEADS: Table = ChainHead.__table__  # type: ignore[assignment]
_PAGE = 200
_MAX_EXACT = 2 ** 53


# ------------------------------------------------------------------ canonical form

def _float(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) <= _MAX_EXACT else value


def _parse_float(text: str) -> int | float:
    return _float(float(text))


def _parse_int(text: str) -> int | float:
    n = int(text)
    if abs(n) <= _MAX_EXACT:
        return n
    try:
        return _float(float(n))
    except OverflowError:  # beyond any double: only an exact integer can stand for it
        return n


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_document(document: Any) -> str:
    """The canonical JSON text of a document as written (a JSON-able Python value)."""
    return canonical_json_text(json.dumps(document))


def canonical_json_text(text: str) -> str:
    """The canonical JSON text of a document read back as JSON text (SQLite's text or
    PostgreSQL's jsonb output: both give the same canonical text)."""
    return _dumps(json.loads(text, parse_float=_parse_float, parse_int=_parse_int))


def canonical_time(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back the UTC wall time without a zone
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_column(column: str, value: Any, *, json_as_text: bool = False) -> str:
    """One column's value as canonical JSON text; ``json_as_text``: the document columns
    hold the JSON text read from the database rather than the Python value written."""
    if value is None:
        return "null"
    if column in JSON_COLUMNS:
        return canonical_json_text(value) if json_as_text else canonical_document(value)
    if isinstance(value, datetime):
        return json.dumps(canonical_time(value))
    return _dumps(value)


def fragments(table: str, row: Mapping[str, Any], *, json_as_text: bool = False) -> dict[str, str]:
    """The canonical text of each hashed column of ``row`` (the costly part: a writer does
    it before taking the chain's lock)."""
    return {c: encode_column(c, row[c], json_as_text=json_as_text) for c in CONTENT[table]}


def digest(encoded: Mapping[str, str], prev_hash: str) -> str:
    """row_hash from the columns' canonical texts and prev_hash: the canonical JSON
    object assembled from its parts (the same text ``json.dumps(sort_keys=True)`` gives)."""
    parts = dict(encoded)
    parts["prev_hash"] = json.dumps(prev_hash)
    text = "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{parts[k]}" for k in sorted(parts)) + "}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def row_hash(table: str, row: Mapping[str, Any], prev_hash: str, *, json_as_text: bool = False) -> str:
    """The row_hash of ``row`` (a mapping with every content column) after ``prev_hash``."""
    return digest(fragments(table, row, json_as_text=json_as_text), prev_hash)


# ------------------------------------------------------------------ writing

@dataclass(frozen=True)
class Pending:
    """A row made ready to append: its values and their canonical texts (see :func:`prepare`)."""

    table: str
    values: dict[str, Any]
    encoded: dict[str, str]


def prepare(table: str, values: dict[str, Any]) -> Pending:
    """Encode a row's content before the transaction: the costly part (the JSON documents)
    is then done before the chain's lock is taken, not while other writers wait on it."""
    return Pending(table, values, fragments(table, {c: None for c in CONTENT[table]} | values | {"id": 0}))


def append(connection: Connection, row: Pending | str, values: dict[str, Any] | None = None,
           **late: Any) -> dict[str, Any]:
    """Insert a row as the next of its table's chain, in the caller's transaction.

    ``row`` is a :func:`prepare`d row, or a table name with its ``values``; ``late`` are
    values known only inside the transaction (a version number), cheap to encode. Returns
    the row as written (with ``id``, ``prev_hash`` and ``row_hash``). The lock on the
    table's ``chain_heads`` row is held until the caller's transaction ends, so concurrent
    writers append one after the other and commit in id order.
    """
    pending = prepare(row, values or {}) if isinstance(row, str) else row
    table = pending.table
    target = _TABLES[table]
    encoded = pending.encoded | {c: encode_column(c, v) for c, v in late.items()}
    locked = connection.execute(update(_HEADS).where(_HEADS.c.name == table).values(last_id=_HEADS.c.last_id))
    if locked.rowcount != 1:  # no head row (a database edited by hand): start one
        connection.execute(insert(_HEADS).values(name=table, last_id=0, last_hash=GENESIS))
    head_id = connection.scalar(select(_HEADS.c.last_id).where(_HEADS.c.name == table)) or 0
    tail = connection.execute(select(target.c.id, target.c.row_hash).order_by(target.c.id.desc()).limit(1)).first()
    # never reuse an id the head has seen, even if rows were cut off the end
    new_id = max(tail.id if tail else 0, head_id) + 1
    prev = (tail.row_hash if tail else None) or GENESIS
    encoded["id"] = encode_column("id", new_id)
    h = digest(encoded, prev)
    written = pending.values | late | {"id": new_id, "prev_hash": prev, "row_hash": h}
    connection.execute(insert(target).values(**written))
    connection.execute(update(_HEADS).where(_HEADS.c.name == table).values(last_id=new_id, last_hash=h))
    return written


# ------------------------------------------------------------------ verifying

@dataclass(frozen=True)
class Break:
    """The first broken link of a chain."""

    table: str
    row_id: int
    what: str  # "prev_hash", "row_hash" or "head"
    expected: str
    found: str
    why: str

    def describe(self) -> str:
        if self.what in NAMED:
            return f"{self.table} row {self.row_id}: {self.what}: {self.why} (expected {self.expected}, found {self.found})"
        return f"{self.table} row {self.row_id}: {self.what} expected {self.expected}, found {self.found} ({self.why})"


# breaks found against the signed anchors or in the cases table, named by what happened
FORGED, REWRITE, TRUNCATED, BACKDATED = "forged append", "rewrite", "truncated tail", "backdated head"
BAD_ANCHOR, NO_ANCHORS, CASES = "bad anchor", "no anchors", "cases table"
NAMED = frozenset({FORGED, REWRITE, TRUNCATED, BACKDATED, BAD_ANCHOR, NO_ANCHORS, CASES})


@dataclass(frozen=True)
class TableReport:
    table: str
    rows: int  # rows verified (up to the break)
    last_id: int
    head_hash: str
    broken: Break | None = None


@dataclass(frozen=True)
class ChainReport:
    tables: tuple[TableReport, ...] = field(default_factory=tuple)
    # the cases table against the versions, and the chains against the signed anchors
    extra: tuple[Break, ...] = ()
    anchors: str | None = None  # the anchors file checked against (None: not checked)
    anchored: tuple[str, ...] = ()  # what the anchors pinned, one line per table
    notes: tuple[str, ...] = ()  # worth knowing, not a break (a checkpoint never committed)
    store: str | None = None  # the store's id (None: a store from before the anchors)

    @property
    def ok(self) -> bool:
        return all(t.broken is None for t in self.tables) and not self.extra

    @property
    def breaks(self) -> list[Break]:
        return [t.broken for t in self.tables if t.broken is not None] + list(self.extra)

    def lines(self) -> list[str]:
        out = []
        for t in self.tables:
            if t.broken is None:
                out.append(f"OK {t.table}: {t.rows} rows, chain head {t.head_hash} (row {t.last_id})")
            else:
                out.append(f"BROKEN {t.broken.describe()}; rows verified before it: {t.rows}")
        out += [f"BROKEN {b.describe()}" for b in self.extra]
        if self.anchors is not None:
            out += [f"ANCHORED {a}" for a in self.anchored]
        out += [f"NOTE {n}" for n in self.notes]
        return out

    def to_dict(self) -> dict[str, Any]:
        def brk(b: Break) -> dict[str, Any]:
            return {"table": b.table, "row_id": b.row_id, "what": b.what, "expected": b.expected,
                    "found": b.found, "why": b.why}

        return {"ok": self.ok, "tables": [
            {"table": t.table, "rows": t.rows, "last_id": t.last_id, "head_hash": t.head_hash,
             "broken": None if t.broken is None else {"row_id": t.broken.row_id, "what": t.broken.what,
                                                      "expected": t.broken.expected, "found": t.broken.found}}
            for t in self.tables], "breaks": [brk(b) for b in self.extra], "anchors": self.anchors,
            "anchored": list(self.anchored), "notes": list(self.notes), "store": self.store}


class ChainUnavailable(RuntimeError):
    """Nothing to verify: no such database, not a case store, or a schema without chains."""


class BrokenChain(RuntimeError):
    """The store refuses to open on a broken chain (see :func:`allowed_by_env`)."""

    def __init__(self, report: ChainReport):
        self.report = report
        first = report.breaks[0]
        super().__init__(
            f"the case store's hash chain is broken: {first.describe()}. It was changed outside nelm; "
            "run `nelm audit verify` for the report and restore it from a backup, or, to start anyway "
            f"(for instance to export what is left), pass --allow-broken-chain or set {ALLOW_ENV}=1")


class UnverifiableChain(BrokenChain):
    """The store refuses to open because its chains cannot be verified (chain columns
    missing, an unexpected migration stamp, its anchors missing or not its own)."""

    def __init__(self, problem: str, problems: list[str]):
        self.report = ChainReport()
        self.problems = problems or [problem]
        RuntimeError.__init__(
            self, f"the case store's hash chain cannot be verified: {problem}. Run `nelm audit verify` for the "
            "report and restore the store (or the anchors file) from a backup, or, to start anyway, pass "
            f"--allow-broken-chain or set {ALLOW_ENV}=1")


def allowed_by_env() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _purged_rows(connection: Connection) -> dict[int, str]:
    """Row id → row_hash of every case version a recorded retention purge emptied."""
    audit = _TABLES["audit_log"]
    out: dict[int, str] = {}
    for detail in connection.execute(select(audit.c.detail).where(audit.c.action == PURGE_ACTION)).scalars():
        try:
            versions = json.loads(detail or "{}").get("versions") or {}
            out.update((int(k), str(v)) for k, v in versions.items())
        except (ValueError, AttributeError, TypeError):
            continue  # an unreadable purge record vouches for nothing (the audit chain checks the row itself)
    return out


def _tombstone(row: Mapping[str, Any]) -> bool:
    text = row["patient"]
    if not isinstance(text, str) or len(text) > 64 or "purged" not in text:  # cheap: most rows are documents
        return False
    try:
        return (json.loads(row["patient"]) == TOMBSTONE and json.loads(row["assessment"]) == TOMBSTONE)
    except (TypeError, ValueError):
        return False


def _verify_table(connection: Connection, table: str) -> TableReport:
    target = _TABLES[table]
    purged = _purged_rows(connection) if table == "case_versions" else {}
    head = connection.execute(select(_HEADS.c.last_id, _HEADS.c.last_hash).where(_HEADS.c.name == table)).first()
    head_id, head_hash = (head.last_id, head.last_hash) if head else (0, GENESIS)
    columns = [cast(target.c[c], Text).label(c) if c in JSON_COLUMNS else target.c[c] for c in CONTENT[table]]
    columns += [target.c.prev_hash, target.c.row_hash]
    prev, rows, last_id, seen_head = GENESIS, 0, 0, head_id == 0

    def report(broken: Break | None = None) -> TableReport:
        return TableReport(table, rows, last_id, prev, broken)

    while True:
        page = connection.execute(select(*columns).where(target.c.id > last_id).order_by(target.c.id)
                                  .limit(_PAGE)).mappings().all()
        for row in page:
            if row["prev_hash"] != prev:
                return report(Break(table, row["id"], "prev_hash", prev, str(row["prev_hash"]),
                                    "it does not link to the row before it: a row was removed, inserted or changed"))
            if table == "case_versions" and _tombstone(row):
                # its content is gone, so its hash cannot be re-computed: the purge's audit entry
                # (itself chained and anchored) must name this row with this very hash
                if purged.get(row["id"]) != row["row_hash"]:
                    return report(Break(table, row["id"], "row_hash", "a retention purge recorded for this row",
                                        str(row["row_hash"]), "the row's content was removed without a purge "
                                        "recorded in the audit log"))
                expected = row["row_hash"]
            else:
                expected = row_hash(table, row, prev, json_as_text=True)
            if row["row_hash"] != expected:
                return report(Break(table, row["id"], "row_hash", expected, str(row["row_hash"]),
                                    "the row was changed after it was written"))
            if row["id"] == head_id:
                seen_head = True
                if row["row_hash"] != head_hash:
                    return report(Break(table, row["id"], "head", head_hash, str(row["row_hash"]),
                                        "the row differs from the chain head recorded for it"))
            prev, rows, last_id = row["row_hash"], rows + 1, row["id"]
        if len(page) < _PAGE:
            break
    if head is None and rows:
        return report(Break(table, last_id, "head", "a chain_heads row", "none",
                            "the record of the chain's end was removed"))
    if not seen_head:
        # the head was read first, so rows appended meanwhile cannot cause this
        return report(Break(table, head_id, "head", head_hash, f"no row {head_id} (the chain ends at row {last_id})",
                            "rows were removed from the end of the chain"))
    return report()


@dataclass(frozen=True)
class AnchorCheck:
    """What to verify the chains against: the anchors file and the public key."""

    path: Path
    public: Any  # an Ed25519PublicKey


def verify(engine: Engine | Connection, anchors: AnchorCheck | None = None) -> ChainReport:
    """Re-compute both chains from the stored rows; the first broken link of each; the
    cases table against the versions; with ``anchors``, the chains against the signed
    checkpoints (see :mod:`.anchors`).

    Read-only, and safe while the store is in use: rows appended during the check are
    verified too or not at all, never reported as a break.
    """
    if isinstance(engine, Connection):
        return _verify(engine, anchors)
    with engine.connect() as connection:
        return _verify(connection, anchors)


def store_id(connection: Connection) -> str | None:
    """The store's id (migration 0003_anchors), None when it has none."""
    if "store_identity" not in inspect(connection).get_table_names():
        return None
    ids = connection.execute(select(StoreIdentity.__table__.c.id)).scalars().all()  # type: ignore[attr-defined]
    if len(ids) != 1:
        raise ChainUnavailable(f"the store_identity table holds {len(ids)} rows, not one: it was edited by hand")
    return str(ids[0])


def _verify(connection: Connection, anchors: AnchorCheck | None = None) -> ChainReport:
    from . import anchors as anchor_file

    names = set(inspect(connection).get_table_names())
    if not {"case_versions", "audit_log", "chain_heads"} <= names:
        raise ChainUnavailable("the database has no hash-chained case store tables "
                               "(not a nelm case store, or one not yet upgraded: start `nelm serve` once)")
    for table in CHAINED:
        have = {c["name"] for c in inspect(connection).get_columns(table)}
        missing = [c for c in (*CONTENT[table], "prev_hash", "row_hash") if c not in have]
        if missing:
            raise ChainUnavailable(f"the {table} table has no {', '.join(missing)} column: the chain columns "
                                   "were removed, so the chain cannot be verified")
    before = None
    sid = None
    if anchors is not None:
        sid = store_id(connection)
        if sid is None:
            raise ChainUnavailable("the store has no store_identity table (migration 0003_anchors): "
                                   "it cannot be matched to its anchors")
        before = anchor_file.read(anchors.path, anchors.public)
        heads = {r.name: (r.last_id, r.last_hash) for r in connection.execute(select(_HEADS))}
    tables = tuple(_verify_table(connection, t) for t in CHAINED)
    extra = list(_verify_cases(connection)) if "cases" in names else []
    if anchors is None or before is None or sid is None:
        return ChainReport(tables, tuple(extra), store=store_id(connection) if "store_identity" in names else None)
    stored = {t: _stored_hashes(connection, t) for t in CHAINED}
    # read after the rows: a row committed before the scan ended has its checkpoint here
    after = anchor_file.read(anchors.path, anchors.public)
    pinned, notes = [], []
    for number, why in after.bad:
        extra.append(Break("anchors", number, BAD_ANCHOR, "a line signed with the anchor key", "another line",
                           f"line {number} of {anchors.path}: {why}"))
    notes += [f"anchors line {n}: not JSON (a write cut off by a crash?); it vouches for nothing"
              for n in after.unreadable]
    mine_before = before.of_store(sid)
    mine_after = after.of_store(sid)
    rows = sum(t.rows for t in tables)
    if not mine_after:
        if rows:
            extra.append(Break("anchors", 0, NO_ANCHORS, f"checkpoints of store {sid}", "none",
                               f"{anchors.path} holds no checkpoint of this store although it has {rows} chained "
                               "rows: the wrong anchors file or key, or the store was replaced"))
    else:
        for table in CHAINED:
            b, p, n = _verify_anchored_table(table, stored[table], mine_before, mine_after, heads.get(table))
            extra += b
            pinned.append(p)
            notes += n
        notes += [f"anchors line {ln.number}: started over a failed check at {ln.at}: {ln.note}"
                  for ln in mine_after if ln.kind == "override"]
    return ChainReport(tables, tuple(extra), anchors=str(anchors.path), anchored=tuple(pinned), notes=tuple(notes),
                       store=sid)


def _stored_hashes(connection: Connection, table: str) -> dict[int, str]:
    """Every row's id and row_hash, in id order."""
    target = _TABLES[table]
    out: dict[int, str] = {}
    last = 0
    while True:
        page = connection.execute(select(target.c.id, target.c.row_hash).where(target.c.id > last)
                                  .order_by(target.c.id).limit(_PAGE * 10)).all()
        out.update((int(i), str(h)) for i, h in page)
        if len(page) < _PAGE * 10:
            return out
        last = page[-1][0]


def _verify_anchored_table(table: str, stored: dict[int, str], before: list[Any], after: list[Any],
                           head: tuple[int, str] | None) -> tuple[list[Break], str, list[str]]:
    """One table's rows (``stored``, id -> row_hash) against the signed lines of its
    store: ``before`` read before the rows, ``after`` after them (a row committed before
    the rows were read has its checkpoint in ``after``: checkpoints are written before
    the commit; one confirmed in ``before`` was committed before they were read)."""
    claims: dict[int, tuple[str, Any]] = {}  # row id -> (hash, line): the last signed for it
    for ln in after:
        if table in ln.heads and ln.kind != "override":
            i, h = ln.heads[table]
            claims[i] = (h, ln)
    confirmed: dict[int, tuple[str, Any]] = {}  # committed before the rows were read
    for ln in before:
        if table in ln.heads and ln.kind in ("confirm", "adopt"):
            i, h = ln.heads[table]
            confirmed[i] = (h, ln)
    breaks: list[Break] = []
    ids = stored.keys()
    last_id = max(ids, default=0)
    last_hash = stored.get(last_id, GENESIS)
    rewritten = None
    for row_id, h in stored.items():
        claim = claims.get(row_id)
        if claim is not None and claim[0] != h:
            rewritten = Break(table, row_id, REWRITE, claim[0], h,
                              f"the row differs from the one signed at {claim[1].at} (anchors line "
                              f"{claim[1].number}): the chain was rewritten and re-hashed")
            break
    if rewritten is not None:
        breaks.append(rewritten)
    gone = sorted(i for i in confirmed if i not in ids)
    removed = [i for i in gone if i < last_id]
    if removed:  # from the middle, the rows after it re-chained: history rewritten
        h, ln = confirmed[removed[0]]
        breaks.append(Break(table, removed[0], REWRITE, h, "no such row",
                            f"row {removed[0]} was signed and committed at {ln.at} (anchors line {ln.number}) but is "
                            "no longer stored: rows were removed and the chain re-hashed"))
    cut = [i for i in gone if i > last_id]
    if cut:
        h, ln = confirmed[cut[-1]]
        breaks.append(Break(table, cut[-1], TRUNCATED, h, "no such row",
                            f"row {cut[-1]} was signed and committed at {ln.at} (anchors line {ln.number}) but the "
                            f"table ends at row {last_id}: rows were cut off the end"))
    pinned = max((i for i, (h, _) in claims.items() if i <= last_id and i in ids), default=0)
    # Every write appends one row to each table it touches and signs it, so every row is
    # signed, but those a store from before the anchors held when it was adopted (the
    # chain vouches for them, up to the adopted row). A row never signed was added
    # outside nelm, wherever it stands (and stays so after a start with
    # --allow-broken-chain: later checkpoints do not vouch for it).
    adopted = max((ln.heads[table][0] for ln in after if ln.kind == "adopt" and table in ln.heads), default=0)
    unsigned = sorted(i for i in ids if i > adopted and i not in claims)
    if unsigned:
        first = unsigned[0]
        breaks.append(Break(table, first, FORGED, f"a signed checkpoint for row {first}", "none",
                            f"{len(unsigned)} row(s) never signed (row {first}"
                            f"{f' to {unsigned[-1]}' if len(unsigned) > 1 else ''}; the last signed before it is "
                            f"row {max((i for i in claims if i < first), default=0)}): appended outside nelm"))
    if head is not None and confirmed and not gone:  # (a cut tail moves the head back too: named above)
        top = max(confirmed)
        if head[0] < top:
            breaks.append(Break(table, head[0], BACKDATED, f"row {top} or later", f"row {head[0]}",
                                f"chain_heads records the chain's end at row {head[0]}, but row {top} was signed "
                                f"and committed at {confirmed[top][1].at}: the head was moved back"))
    notes = [f"{table} row {i}: checkpoint at anchors line {ln.number} ({ln.at}) was never committed "
             "(a crash or a rolled-back write)"
             for i, (h, ln) in sorted(claims.items()) if i > last_id and i not in confirmed
             and not any(c.kind in ("confirm", "adopt") and c.heads.get(table) == (i, h) for c in after)]
    latest = claims.get(last_id)
    summary = (f"{table}: row {last_id} signed at {latest[1].at} (anchors line {latest[1].number})"
               if latest is not None and latest[0] == last_hash else
               f"{table}: {'no rows' if not last_id else f'signed up to row {pinned} only'}")
    return breaks, summary, notes


def _verify_cases(connection: Connection) -> list[Break]:
    """The cases table (what the case list once came from; now the row writers lock)
    against the chained versions: every case with versions has its row, every row has
    versions, and each row's latest version is that of its versions. (Its label and
    times are no longer read by anything the board sees: they come from the versions.)"""
    cases = Case.__table__  # type: ignore[attr-defined]
    versions = _TABLES["case_versions"]
    # Each check is one statement, so one snapshot: a case written meanwhile (its row and
    # its version commit together) is never half seen.
    latest = (select(func.max(versions.c.version)).where(versions.c.case_id == cases.c.id)
              .correlate(cases).scalar_subquery())
    out = []
    for case_id, stored, n in connection.execute(select(cases.c.id, cases.c.latest_version, latest.label("n"))):
        if n is None:
            out.append(Break("cases", 0, CASES, "at least one chained version", "none",
                             f"case {case_id} has a cases row but no version: it was added by hand"))
        elif stored != n:
            out.append(Break("cases", n, CASES, f"latest_version {n}", f"latest_version {stored}",
                             f"case {case_id}: the cases row was edited (its chained versions end at {n})"))
    orphans = (select(versions.c.case_id, func.max(versions.c.version)).group_by(versions.c.case_id)
               .where(~exists().where(cases.c.id == versions.c.case_id)))
    for case_id, n in connection.execute(orphans):
        out.append(Break("cases", n, CASES, f"a cases row for {case_id}", "none",
                         f"case {case_id} has {n} chained versions but its cases row was deleted"))
    return out[:20]


def verify_database(url: str, anchors: AnchorCheck | None = None) -> ChainReport:
    """:func:`verify` on the database at ``url``, changing nothing (no migration runs,
    and a missing SQLite file is not created)."""
    from .db import make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ChainUnavailable("an in-memory SQLite database holds no case store")
        if not Path(parsed.database).expanduser().is_file():
            raise ChainUnavailable(f"no case store at {parsed.database}")
    engine = make_engine(url)
    try:
        return verify(engine, anchors)
    finally:
        engine.dispose()
