"""Tables of patients: CSV, Parquet or JSON Lines read into one column layout.

The layout is the patient document of ../shared/CONTRACT.md, one column per dotted
field path (``pathology.ki67_percent``), plus ``id`` and the two list fields
``extrahepatic.sites`` (a list of text) and ``prior_therapies`` (a list of records).
Inputs may be nested (JSON Lines documents, Parquet structs) or already flat (columns
named by dotted path); a field whose column is absent is unknown for every row.

CSV has no lists: ``extrahepatic.sites`` is written ``lung;bone`` (``[]`` for a known
empty list, an empty cell for unknown) and ``prior_therapies`` either as
``ssa:progression;everolimus`` (``therapy[:outcome]`` items) or as a JSON array of the
contract's objects. CSV cells are text: numbers and ``true``/``false`` are read from
text; a cell that is not one is reported as an invalid row, never guessed.

Reading never stops at a bad row: problems are collected as :class:`RowProblem`
(row number, dotted field, message) and the row is left out of the assessment. A file that
is not a table (empty, not UTF-8, ragged, corrupt Parquet, beyond :data:`MAX_COLUMNS` or
:data:`MAX_LINE_BYTES`) raises :class:`TableError`, one line naming the file and the problem.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from .. import inputgate
from ..patient import SCALAR_FIELDS, InvalidPatient, validate_patient

SITES = "extrahepatic.sites"
PRIOR = "prior_therapies"
PRIOR_STRUCT = pl.Struct({"therapy": pl.String, "outcome": pl.String, "months_to_progression": pl.Float64,
                          "ongoing": pl.Boolean})
_TYPES = {"float": pl.Float64, "bool": pl.Boolean, "str": pl.String}
# the typed layout (after validation); while validating, values keep the input's own types
SCHEMA: dict[str, pl.DataType] = {"id": pl.String, **{f: _TYPES[t] for f, t in SCALAR_FIELDS.items()},
                                  SITES: pl.List(pl.String), PRIOR: pl.List(PRIOR_STRUCT)}
FIELDS = tuple(SCHEMA)
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class RowProblem:
    row: int            # 1-based number of the data row in the input (the header is not counted)
    field: str          # dotted path, as the patient model names it
    message: str


def input_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown table format {suffix!r}; allowed: .csv, .parquet, .jsonl (JSON Lines)")
    return FORMATS[suffix]


# ----------------------------------------------------------------------------- the file itself

# Limits checked before any parser runs (README, "Screening registries"). The contract has
# 46 columns (one per dotted field, ``id`` and the two lists; 49 leaf columns when nested)
# and ``nelm cohort`` adds 7 outcome columns; 128 leaves room for a few mistyped or extra
# columns (those are refused by row) while a table of thousands of columns — which the
# readers handle in time growing with the square of the column count — is refused at once.
MAX_COLUMNS = 128
# One line (a CSV row, a JSON Lines document): four times the input gate's limit for one
# patient document (256 KiB). A row larger than a document but within this limit reaches the
# gate and is refused as an invalid row (the other rows go on); a longer line ends the run
# before anything is parsed.
MAX_LINE_BYTES = 4 * inputgate.MAX_DOCUMENT_BYTES
# One CSV cell other than ``prior_therapies`` (whose JSON goes through the gate whole):
# the gate's limit for one text value.
MAX_CELL_CHARS = inputgate.MAX_STRING_CHARS
_BLOCK = 1 << 20


class TableError(ValueError):
    """A file that cannot be read as a table at all: one line naming the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        problem = " ".join(str(problem).split())
        if len(problem) > 300:
            problem = problem[:300] + "…"
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class _Scan:
    rows: int               # lines (CSV: after the header), for the progress bar
    header: tuple[str, ...]  # CSV column names (empty for JSON Lines)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise TableError(path, f"cannot be read ({exc.strerror or exc})") from None


def _csv_header(path: Path, first: bytes) -> tuple[str, ...]:
    import csv

    line = first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TableError(path, f"the header is not UTF-8 text (byte 0x{line[exc.start]:02x} at offset {exc.start}); "
                               "CSV files must be UTF-8") from None
    if text.count(",") + 1 > MAX_COLUMNS:   # before splitting: a huge header is refused in linear time
        raise TableError(path, f"has {text.count(',') + 1} columns; at most {MAX_COLUMNS} are accepted "
                               f"(the contract has {len(FIELDS)})")
    if "\r" in text:
        raise TableError(path, "has carriage returns (\\r) alone as line breaks; save it with \\n or \\r\\n line breaks")
    try:
        header = tuple(next(csv.reader([text])))
    except csv.Error as exc:
        raise TableError(path, f"the header is not a CSV line ({exc})") from None
    if not any(h.strip() for h in header):
        raise TableError(path, "the first line is empty; a CSV file starts with its header (column names)")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise TableError(path, f"column {name[:40]!r} appears more than once in the header")
        seen.add(name)
    return header


def scan(path: str | Path) -> _Scan:
    """Check a CSV or JSON Lines file in one pass before it is parsed: UTF-8, every line at
    most :data:`MAX_LINE_BYTES`, a header within :data:`MAX_COLUMNS`, at least one data row.
    Raises :class:`TableError`. Cached per file version (the CLI counts rows first)."""
    path = Path(path)
    st = _file_size(path), path.stat().st_mtime_ns
    return _scan(str(path), *st)


@functools.lru_cache(maxsize=8)
def _scan(name: str, size: int, _mtime: int) -> _Scan:
    import codecs

    path = Path(name)
    fmt = input_format(path)
    if size == 0:
        raise TableError(path, "is empty" + ("; a CSV file starts with its header (column names)" if fmt == "csv"
                                             else "; JSON Lines holds one patient document per line"))
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    lines = 0            # newline characters seen
    nonblank = 0         # lines with something on them, counted up to 2 (a header and a row)
    current = 0          # bytes of the line being read
    blank = True         # the current line holds only white space so far
    first = b""
    offset = 0
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_BLOCK):
                if len(first) <= MAX_LINE_BYTES and lines == 0:
                    first += block[:MAX_LINE_BYTES + 1 - len(first)]
                    if fmt == "csv" and (b"\n" in first or len(first) > MAX_LINE_BYTES):
                        if b"\n" not in first:
                            raise TableError(path, f"the header is longer than {MAX_LINE_BYTES // 1024} KiB "
                                                   "without a line break")
                        header = _csv_header(path, first.split(b"\n", 1)[0])
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    line = lines + block.count(b"\n", 0, max(exc.start, 0)) + 1
                    raise TableError(path, f"is not UTF-8 text (byte 0x{block[max(exc.start, 0)]:02x} on line {line}, "
                                           f"offset {offset + max(exc.start, 0)}); "
                                           f"{'CSV' if fmt == 'csv' else 'JSON Lines'} files must be UTF-8 "
                                           "(re-save or convert the file, e.g. iconv -f latin1 -t utf-8)") from None
                parts = block.split(b"\n")
                lengths = [current + len(parts[0]), *map(len, parts[1:])]   # C loops: no Python step per line
                if max(lengths) > MAX_LINE_BYTES:
                    at = next(i for i, n in enumerate(lengths) if n > MAX_LINE_BYTES)
                    raise TableError(path, f"line {lines + at + 1} is longer than {MAX_LINE_BYTES // 1024} KiB; "
                                           "one row (one patient) is at most that long")
                if nonblank < 2:   # only until a header and one row (or one document) are seen
                    for i, part in enumerate(parts):
                        blank = blank and not part.strip()
                        if i < len(parts) - 1:
                            nonblank += not blank
                            blank = True
                            if nonblank >= 2:
                                break
                lines += len(parts) - 1
                current = lengths[-1]
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise TableError(path, "is not UTF-8 text (it ends inside a multi-byte character); files must be UTF-8") \
            from None
    except OSError as exc:
        raise TableError(path, f"cannot be read ({exc.strerror or exc})") from None
    if nonblank < 2:
        nonblank += not blank
    rows = lines + (current > 0)   # for the progress bar: blank lines are counted too
    if nonblank == 0:
        raise TableError(path, "holds only white space (no header, no rows)" if fmt == "csv"
                         else "holds only white space (no documents)")
    if fmt == "csv":
        if lines == 0 and b"\n" not in first:
            header = _csv_header(path, first)
        if nonblank == 1:
            raise TableError(path, "has a header but no data rows")
        return _Scan(rows - 1, header)
    return _Scan(rows, ())


def _parquet(path: Path) -> Any:
    """The Parquet file's reader, its footer checked: readable, columns within the limit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _file_size(path) == 0:
        raise TableError(path, "is empty (0 bytes); not a Parquet file")
    try:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TableError(path, f"is not a readable Parquet file ({exc})") from None
    if meta.num_columns > MAX_COLUMNS:
        raise TableError(path, f"has {meta.num_columns} columns; at most {MAX_COLUMNS} are accepted "
                               f"(the contract has {len(FIELDS)})")
    stack = [(f.type, 1) for f in schema]
    while stack:
        t, depth = stack.pop()
        if depth > 4:   # the contract: prior_therapies (list) -> record (struct) -> field
            raise TableError(path, "has columns nested more than 4 levels deep; a patient document is at most 3")
        stack += [(t.field(i).type, depth + 1) for i in range(t.num_fields)]
    if meta.num_rows == 0 or meta.num_columns == 0:
        raise TableError(path, "has no rows" if meta.num_rows == 0 else "has no columns")
    return pf


def count_rows(path: str | Path) -> int | None:
    """Rows in the input, for the progress bar; checks the file (:class:`TableError`)."""
    fmt = input_format(path)
    if fmt == "parquet":
        return _parquet(Path(path)).metadata.num_rows
    return scan(path).rows


def batches(path: str | Path, size: int = 200_000) -> Iterator[pl.DataFrame]:
    """The input in batches of at most ``size`` raw rows (each with ``__row``, the 1-based
    row number). Only one batch is held at a time: CSV through pyarrow's streaming reader,
    Parquet by row groups, JSON Lines ``size`` lines at a time. A file that cannot be read
    as a table raises :class:`TableError` naming it and the problem."""
    path = Path(path)
    fmt = input_format(path)
    if fmt == "parquet":
        yield from _parquet_batches(path, size)
    elif fmt == "csv":
        yield from _csv_batches(path, size)
    else:
        yield from _jsonl_batches(path, size)


def _numbered(frame: pl.DataFrame, first: int) -> pl.DataFrame:
    return frame.with_row_index("__row", offset=first)


def _parquet_batches(path: Path, size: int) -> Iterator[pl.DataFrame]:
    import pyarrow as pa

    pf = _parquet(path)
    done = 0
    it = pf.iter_batches(batch_size=size)
    while True:
        try:
            batch = next(it, None)
            if batch is None:
                return
            frame = pl.from_arrow(pa.Table.from_batches([batch]))
        except (pa.ArrowException, OSError, ValueError, pl.exceptions.PolarsError) as exc:
            raise TableError(path, f"cannot be read after row {done} (corrupt or unsupported Parquet data: {exc})") \
                from None
        assert isinstance(frame, pl.DataFrame)
        yield _numbered(frame, done + 1)
        done += frame.height


def _csv_batches(path: Path, size: int) -> Iterator[pl.DataFrame]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = scan(path).header
    done = 0
    pending: list[Any] = []
    held = 0
    try:
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=4 * MAX_LINE_BYTES, use_threads=False),
                               parse_options=pcsv.ParseOptions(newlines_in_values=True),
                               convert_options=pcsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                                   null_values=[""], strings_can_be_null=True))
        while True:
            batch = next(reader, None) if held < size else None
            if batch is not None:
                pending.append(batch)
                held += batch.num_rows
                continue
            if not held:
                return
            table = pa.Table.from_batches(pending)
            chunk, rest = table.slice(0, size), table.slice(size)
            pending, held = rest.to_batches(), rest.num_rows
            frame = pl.from_arrow(chunk)
            assert isinstance(frame, pl.DataFrame)
            yield _numbered(frame, done + 1)
            done += frame.height
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TableError(path, _csv_problem(path, len(header)) or f"is not a readable CSV table ({exc})") from None


def _csv_problem(path: Path, width: int) -> str | None:
    """The first row whose number of fields differs from the header's (read again, only
    after the fast reader failed, to name the row)."""
    import csv

    n = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = csv.reader(fh)
            next(rows, None)
            for n, fields in enumerate(rows, 1):
                if fields and len(fields) != width:
                    return f"row {n} has {len(fields)} fields, the header has {width}"
    except (csv.Error, OSError, UnicodeDecodeError) as exc:   # an unterminated quote, say
        return f"is not a readable CSV table after row {n} ({exc})"
    return None


def _jsonl_batches(path: Path, size: int) -> Iterator[pl.DataFrame]:
    scan(path)
    chunk: list[tuple[int, bytes]] = []
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            chunk.append((n, line.removeprefix(b"\xef\xbb\xbf") if n == 1 else line))
            if len(chunk) >= size:
                yield _jsonl_frame(chunk)
                chunk = []
    if chunk:
        yield _jsonl_frame(chunk)


def _jsonl_frame(chunk: list[tuple[int, bytes]]) -> pl.DataFrame:
    """One batch of JSON Lines: read by Polars when every line is plain (no line nesting
    deeper than the gate allows could be there), else — or when the documents do not fit
    one schema — each document through the input gate and the patient model on its own."""
    import io

    if all(len(line) <= inputgate.MAX_DOCUMENT_BYTES and line.count(b"[") + line.count(b"{") <= inputgate.MAX_DEPTH
           for _, line in chunk) and not _repeated_keys(chunk):
        try:
            frame = pl.read_ndjson(io.BytesIO(b"\n".join(line.rstrip(b"\r\n") for _, line in chunk)),
                                   infer_schema_length=None)
            if frame.height == len(chunk):
                rows = pl.Series("__row", [n for n, _ in chunk], dtype=pl.UInt32)
                return frame.insert_column(0, rows)
        except Exception:  # noqa: BLE001, S110  # nosec B110 - mixed types, a broken line: judged line by line below
            pass
    return _lines(chunk)


class _Repeated(Exception):
    pass


def _repeated_keys(chunk: list[tuple[int, bytes]]) -> bool:
    """Whether a line gives one key twice in one object, or is not JSON (Polars would keep
    one of the values silently; the gate refuses it), or the batch names more distinct keys
    than :data:`MAX_COLUMNS` allows with room for nesting (Polars would make a column of
    each, in time growing with their square): then the batch goes line by line through the
    gate and the patient model. One pass of the standard library's C parser per line."""
    names: set[str] = set()

    def unique_keys(pairs: list[tuple[str, Any]]) -> int:
        keys = {k for k, _ in pairs}
        names.update(keys)
        if len(keys) != len(pairs) or len(names) > 4 * MAX_COLUMNS:
            raise _Repeated
        return 0   # the values are not needed: Polars reads the batch

    try:
        for _, line in chunk:
            json.loads(line, object_pairs_hook=unique_keys)
    except (_Repeated, ValueError, RecursionError):
        return True
    return False


def _lines(chunk: list[tuple[int, bytes]]) -> pl.DataFrame:
    """JSON Lines whose documents Polars cannot put in one schema: parsed and validated one
    by one (the per-document path of ``nelm assess``), then laid out like the rest."""
    from ..patient import parse_text

    rows: list[dict[str, Any]] = []
    for n, raw in chunk:
        try:
            doc = validate_patient(parse_text(inputgate.decode(raw.rstrip(b"\r\n"), f"line {n}"), "json")).model_dump()
            rows.append({"__row": n, **document_row(doc)})
        except InvalidPatient as exc:
            rows.append({"__row": n, "__problems": [f"{f}\t{m}" for f, m in exc.problems]})
        except Exception as exc:  # noqa: BLE001 - the gate's own refusals (not JSON, too deep, ...)
            rows.append({"__row": n, "__problems": [f"\t{exc}"]})
    return _frame(rows)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {"__row": pl.UInt32, **SCHEMA, "__problems": pl.List(pl.String)}
    return pl.DataFrame(rows, schema=schema)


def document_row(doc: dict[str, Any]) -> dict[str, Any]:
    """A patient document (as ``Patient.model_dump`` gives it) as one row of the layout."""
    row: dict[str, Any] = {"id": doc.get("id")}
    for field in SCALAR_FIELDS:
        node: Any = doc
        for part in field.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        row[field] = node
    row[SITES] = (doc.get("extrahepatic") or {}).get("sites")
    prior = doc.get(PRIOR)
    row[PRIOR] = None if prior is None else [{k: p.get(k) for k in PRIOR_STRUCT.to_schema()} for p in prior]
    return row


def row_document(row: dict[str, Any]) -> dict[str, Any]:
    """One row of the layout as a patient document (unknown fields left out)."""
    doc: dict[str, Any] = {}
    for field, value in row.items():
        if value is None or field.startswith("__"):
            continue
        if field == PRIOR:
            value = [{k: v for k, v in p.items() if v is not None} for p in value]
        node = doc
        *parents, last = field.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return doc


# --------------------------------------------------------------------------- to the layout

def to_layout(raw: pl.DataFrame, fmt: str) -> tuple[pl.DataFrame, list[RowProblem]]:
    """Raw input rows in the layout's column names (values still in the input's types).

    Nested structs become dotted columns; CSV text becomes numbers, booleans and lists.
    Columns the contract does not know are refused for every row that fills them.
    """
    problems: list[RowProblem] = []
    if "__problems" in raw.columns:    # rows already judged one by one (_lines)
        for r, probs in raw.filter(pl.col("__problems").is_not_null()).select("__row", "__problems").iter_rows():
            problems += [RowProblem(r, *p.split("\t", 1)) for p in probs]
        raw = raw.filter(pl.col("__problems").is_null()).drop("__problems")
    frame = _unnest(raw)
    unknown = [c for c in frame.columns if c not in SCHEMA and c != "__row"]
    for col in unknown:
        bad = frame.filter(pl.col(col).is_not_null()).select("__row", col)
        if bad.height:
            message = _refusal(col, bad.row(0)[1])
            problems += [RowProblem(r, col, message) for r in bad["__row"]]
    frame = frame.drop(unknown)
    if fmt == "csv":
        frame, csv_problems = _from_text(frame)
        problems += csv_problems
    if PRIOR in frame.columns and isinstance(frame.schema[PRIOR], pl.List):
        frame, prior_problems = _prior_records(frame)
        problems += prior_problems
    elif PRIOR in frame.columns and frame.schema[PRIOR] not in (pl.Object, pl.Null):   # a Parquet text column, say
        bad = frame.filter(pl.col(PRIOR).is_not_null())["__row"].to_list()
        problems += [RowProblem(r, PRIOR, "must be a list of {therapy, outcome, ...} records") for r in bad]
        frame = frame.with_columns(pl.lit(None).alias(PRIOR))
    return frame, problems


def _unnest(frame: pl.DataFrame, prefix: str = "") -> pl.DataFrame:
    """Structs (nested documents) become dotted columns; lists stay lists."""
    cols = []
    for name, dtype in frame.schema.items():
        path = f"{prefix}{name}"
        if isinstance(dtype, pl.Struct):
            inner = frame.select(pl.col(name).struct.unnest())
            cols += _unnest(inner, path + ".").get_columns()
        else:
            cols.append(frame[name].alias(path))
    return pl.DataFrame(cols)


def _refusal(field: str, value: Any) -> str:
    """The patient model's own message for a field it does not know."""
    doc = row_document({field: value if not isinstance(value, pl.Series) else value.to_list()})
    try:
        validate_patient(doc)
    except InvalidPatient as exc:
        return next((m for f, m in exc.problems if f == field), exc.problems[0][1])
    except Exception as exc:
        return str(exc)
    return "unknown field"


def _from_text(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[RowProblem]]:
    problems: list[RowProblem] = []
    out = []
    for name in frame.columns:
        s = frame[name]
        if name == "__row" or s.dtype != pl.String:
            out.append(s)
            continue
        s = s.str.strip_chars().replace("", None)
        if name != PRIOR:   # a cell larger than any value of the contract: named, not parsed
            sizes = s.str.len_chars()
            big = frame.select("__row").with_columns(n=sizes).filter(pl.col("n") > MAX_CELL_CHARS)
            problems += [RowProblem(r, name, f"cell of {n} characters; at most {MAX_CELL_CHARS} are accepted")
                         for r, n in big.iter_rows()]
            if big.height:
                s = s.zip_with(sizes <= MAX_CELL_CHARS, pl.Series(name, [None] * len(s), dtype=pl.String))
        kind = SCALAR_FIELDS.get(name)
        if kind == "float":
            typed = s.cast(pl.Float64, strict=False)
            what = "a number"
        elif kind == "bool":
            typed = s.str.to_lowercase().replace_strict({"true": True, "false": False}, default=None,
                                                       return_dtype=pl.Boolean)
            what = "true or false"
        elif name == SITES:
            typed = pl.Series(name, [None if v is None else [] if v == "[]" else [x.strip() for x in v.split(";")]
                                     for v in s.to_list()], dtype=pl.List(pl.String))
            what = None
        elif name == PRIOR:
            typed, bad = _prior_text(s, frame["__row"])
            problems += bad
            what = None
        else:
            typed, what = s, None
        if what:
            wrong = frame.select("__row").with_columns(v=s).filter(s.is_not_null() & typed.is_null())
            problems += [RowProblem(r, name, f"not {what} (got {v!r})") for r, v in wrong.iter_rows()]
        out.append(typed.alias(name))
    return pl.DataFrame(out), problems


def _prior_text(s: pl.Series, rows: pl.Series) -> tuple[pl.Series, list[RowProblem]]:
    """``ssa:progression;everolimus`` or a JSON array of the contract's objects."""
    problems: list[RowProblem] = []
    parsed: dict[str, Any] = {}
    for v in s.unique().drop_nulls().to_list():
        if v.startswith("["):
            try:   # the input gate, as for a document: depth, size, duplicate keys, numbers, text
                parsed[v] = inputgate.parse_text(v, "json")
            except InvalidPatient as exc:
                parsed[v] = exc
        else:
            items = [] if v == "" else [x.strip() for x in v.split(";") if x.strip()]
            parsed[v] = [dict(zip(("therapy", "outcome"), item.split(":", 1))) for item in items]
    values = []
    for r, v in zip(rows.to_list(), s.to_list()):
        p = parsed.get(v) if v is not None else None
        if isinstance(p, InvalidPatient):
            problems += [RowProblem(r, f"{PRIOR}.{f}" if f else PRIOR, m if f else f"JSON cell: {m}")
                         for f, m in p.problems]
            p = None
        values.append(p)
    return pl.Series(PRIOR, values, dtype=pl.Object), problems


def _prior_records(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[RowProblem]]:
    """Prior therapies as a list of the contract's records; unknown keys refused by row."""
    s = frame[PRIOR]
    inner = s.dtype.inner
    keys = list(PRIOR_STRUCT.to_schema())
    if isinstance(inner, pl.Struct) and set(inner.to_schema()) <= set(keys):
        fields = inner.to_schema()
        fill = [pl.element().struct.field(k) if k in fields else pl.lit(None).alias(k) for k in keys]
        return frame.with_columns(pl.col(PRIOR).list.eval(pl.struct(fill))), []
    return _prior_objects(frame, s.to_list())


def _prior_objects(frame: pl.DataFrame, values: list[Any]) -> tuple[pl.DataFrame, list[RowProblem]]:
    problems: list[RowProblem] = []
    keys = list(PRIOR_STRUCT.to_schema())
    out: list[Any] = []
    for r, v in zip(frame["__row"].to_list(), values):
        if v is None:
            out.append(None)
            continue
        if isinstance(v, pl.Series):
            v = v.to_list()
        if not isinstance(v, list) or not all(isinstance(p, dict) for p in v):
            problems.append(RowProblem(r, PRIOR, "must be a list of {therapy, outcome, ...} records"))
            out.append(None)
            continue
        extra = sorted({k for p in v for k in p if p.get(k) is not None} - set(keys))
        if extra:
            problems.append(RowProblem(r, f"{PRIOR}.{extra[0]}", _refusal(PRIOR, [{extra[0]: 0}])))
            out.append(None)
            continue
        out.append(v)
    series = pl.Series(PRIOR, out, dtype=pl.Object)
    return frame.with_columns(series), problems


def complete(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column of the layout, absent ones unknown (null)."""
    missing = [pl.lit(None, dtype=SCHEMA[c]).alias(c) for c in SCHEMA if c not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def typed(frame: pl.DataFrame) -> pl.DataFrame:
    """The layout in its own types (for rows that passed validation)."""
    cols = []
    for name, dtype in SCHEMA.items():
        s = frame[name]
        if s.dtype == pl.Object:
            s = pl.Series(name, [None if v is None else v for v in s.to_list()], dtype=dtype)
        cols.append(s.cast(dtype, strict=False) if s.dtype != dtype else s)
    return pl.DataFrame([frame["__row"], *cols])
