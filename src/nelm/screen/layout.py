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
(row number, dotted field, message) and the row is left out of the assessment.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import polars as pl

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


def count_rows(path: str | Path) -> int | None:
    """Rows in the input, for the progress bar (None when it would cost a second read)."""
    fmt = input_format(path)
    if fmt == "parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    n = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    n += last != b"\n"
    return n - 1 if fmt == "csv" else n


def batches(path: str | Path, size: int = 200_000) -> Iterator[pl.DataFrame]:
    """The input in batches of raw rows (each with ``__row``, the 1-based row number)."""
    fmt = input_format(path)
    if fmt == "csv":
        lf = pl.scan_csv(path, infer_schema=False)
    elif fmt == "parquet":
        lf = pl.scan_parquet(path)
    else:
        try:
            lf = pl.scan_ndjson(path, infer_schema_length=None)
            lf.collect_schema()
        except Exception:   # mixed types across documents: read each line on its own
            yield from _lines(path, size)
            return
    lf = lf.with_row_index("__row", offset=1)
    try:
        yield from lf.collect_batches(chunk_size=size)
    except pl.exceptions.PolarsError:
        if fmt != "jsonl":
            raise
        yield from _lines(path, size)


def _lines(path: str | Path, size: int) -> Iterator[pl.DataFrame]:
    """JSON Lines whose documents Polars cannot put in one schema: parsed and validated one
    by one (the per-document path of ``nelm assess``), then laid out like the rest."""
    from ..patient import parse_text

    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = validate_patient(parse_text(line, "json")).model_dump()
                rows.append({"__row": n, **document_row(doc)})
            except InvalidPatient as exc:
                rows.append({"__row": n, "__problems": [f"{f}\t{m}" for f, m in exc.problems]})
            except Exception as exc:  # the gate's own refusals (not JSON, too deep, ...)
                rows.append({"__row": n, "__problems": [f"\t{exc}"]})
            if len(rows) >= size:
                yield _frame(rows)
                rows = []
    if rows:
        yield _frame(rows)


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
            try:
                parsed[v] = json.loads(v)
            except ValueError as exc:
                parsed[v] = ValueError(f"not a JSON array ({exc})")
        else:
            items = [] if v == "" else [x.strip() for x in v.split(";") if x.strip()]
            parsed[v] = [dict(zip(("therapy", "outcome"), item.split(":", 1))) for item in items]
    values = []
    for r, v in zip(rows.to_list(), s.to_list()):
        p = parsed.get(v) if v is not None else None
        if isinstance(p, ValueError):
            problems.append(RowProblem(r, PRIOR, str(p)))
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
