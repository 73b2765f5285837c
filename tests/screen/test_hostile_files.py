"""Hostile registry files (issue 24, item 6): every malformed table ends ``nelm screen`` with
exit 2 and one line naming the file and the problem — never a traceback or "internal
error" — and a problem of one row (a deeply nested, duplicated or huge JSON cell, a broken
JSON Lines line, an unknown column) names that row while the other rows are still written.
The reading is also checked to hold one batch of at most ``--batch-size`` rows at a time.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from nelm.cli import app
from nelm.screen import layout
from nelm.screen.run import screen

GOOD = "id,pathology.ki67_percent\ngood1,2\ngood2,3\n"


def _parquet_bytes(table: pa.Table, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    pq.write_table(table, buf, **kw)
    return buf.getvalue()


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


# name -> (file name, bytes, words the one-line message must contain)
FILE_CASES: dict[str, tuple[str, Callable[[], bytes], tuple[str, ...]]] = {
    "empty csv": ("t.csv", lambda: b"", ("is empty",)),
    "white space csv": ("t.csv", lambda: b"\n \n\r\n", ("first line is empty",)),
    "header only csv": ("t.csv", lambda: b"id,pathology.ki67_percent\n", ("no data rows",)),
    "header only, no newline": ("t.csv", lambda: b"id,pathology.ki67_percent", ("no data rows",)),
    "latin-1 csv": ("t.csv", lambda: "id,pathology.ki67_percent\nJos\xe9,3\n".encode("latin-1"),
                    ("not UTF-8", "line 2", "must be UTF-8")),
    "latin-1 header": ("t.csv", lambda: "\xefd,x\na,1\n".encode("latin-1"), ("not UTF-8",)),
    "utf-16 csv": ("t.csv", lambda: GOOD.encode("utf-16"), ("not UTF-8",)),
    "truncated utf-8": ("t.csv", lambda: GOOD.encode() + "é".encode()[:1], ("not UTF-8",)),
    "ragged csv (extra field)": ("t.csv", lambda: (GOOD + "bad,4,5\n").encode(), ("row 3 has 3 fields", "header has 2")),
    "ragged csv (missing field)": ("t.csv", lambda: b"id,pathology.ki67_percent,liver.lesion_count\na,1,2\nb,3\n",
                                   ("row 2 has 2 fields", "header has 3")),
    "20,000 columns": ("t.csv", lambda: (",".join(f"c{i}" for i in range(20_000)) + "\n"
                                         + ",".join("1" for _ in range(20_000)) + "\n").encode(),
                       ("20000 columns", f"at most {layout.MAX_COLUMNS}")),
    "duplicated column": ("t.csv", lambda: b"id,id\na,b\n", ("'id' appears more than once",)),
    "header without line break": ("t.csv", lambda: b"a" * (layout.MAX_LINE_BYTES + 10), ("header is longer",)),
    "line too long": ("t.csv", lambda: (GOOD + "x," + "1" * layout.MAX_LINE_BYTES + "\n").encode(),
                      ("line 4 is longer than",)),
    "carriage returns alone": ("t.csv", lambda: b"id,pathology.ki67_percent\ra,3\rb,4\r", ("carriage returns",)),
    "unterminated quote": ("t.csv", lambda: b'id,pathology.ki67_percent\na,3\n"b,4\nc,5\n', ("row 2",)),
    "unterminated quote, long": ("t.csv", lambda: (GOOD + '"' + "x" * 200_000 + "\n").encode(), ("row 2",)),
    "empty parquet": ("t.parquet", lambda: b"", ("is empty", "Parquet")),
    "garbage parquet": ("t.parquet", lambda: b"PAR1 this is not parquet PAR1", ("not a readable Parquet file",)),
    "text as parquet": ("t.parquet", lambda: GOOD.encode(), ("not a readable Parquet file",)),
    "truncated parquet": ("t.parquet", lambda: _parquet_bytes(pa.table({"id": [f"p{i}" for i in range(1000)]}))[:-100],
                          ("not a readable Parquet file",)),
    "parquet without rows": ("t.parquet", lambda: _parquet_bytes(pa.table({"id": pa.array([], pa.string())})),
                             ("has no rows",)),
    "parquet without columns": ("t.parquet", lambda: _parquet_bytes(pa.table({"id": ["a", "b"]}).drop_columns(["id"])),
                                ("has no",)),
    "wide parquet": ("t.parquet", lambda: _parquet_bytes(pa.table({f"c{i}": [1] for i in range(layout.MAX_COLUMNS + 1)})),
                     (f"{layout.MAX_COLUMNS + 1} columns",)),
    "deeply nested parquet": ("t.parquet", lambda: _parquet_bytes(pa.table({"id": pa.array(
        [[[[[["x"]]]]]], pa.list_(pa.list_(pa.list_(pa.list_(pa.list_(pa.string()))))))})), ("nested more than",)),
    "empty jsonl": ("t.jsonl", lambda: b"", ("is empty",)),
    "blank jsonl": ("t.jsonl", lambda: b"\n\n  \n", ("white space",)),
    "latin-1 jsonl": ("t.jsonl", lambda: '{"id": "a"}\n{"id": "Jos\xe9"}\n'.encode("latin-1"),
                      ("not UTF-8", "line 2", "JSON Lines files must be UTF-8")),
    "jsonl line too long": ("t.jsonl", lambda: ('{"id": "' + "a" * layout.MAX_LINE_BYTES + '"}\n').encode(),
                            ("line 1 is longer than",)),
}


def _run(tmp_path: Path, name: str, data: bytes, batch: int = 1000):
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(app, ["screen", str(src), "--out", str(out), "--chart", "none",
                                 "--batch-size", str(batch)])
    return src, out, r


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_malformed_file_is_one_line_exit_2(tmp_path, case):
    name, make, words = FILE_CASES[case]
    src, out, r = _run(tmp_path, name, make())
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert isinstance(r.exception, SystemExit)   # no other exception escaped the command
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"nelm: {src}: "), lines[0]
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not out.exists()   # nothing half-written


def _prior_rows(cell: str) -> bytes:
    return ("id,pathology.ki67_percent,prior_therapies\ngood1,2,\nbad,3," + _csv_cell(cell)
            + "\ngood2,4,ssa:progression\n").encode()


# name -> (file name, bytes, the bad row's number, its field, words of its message)
ROW_CASES: dict[str, tuple[str, Callable[[], bytes], int, str, tuple[str, ...]]] = {
    "deeply nested JSON cell": ("t.csv", lambda: _prior_rows("[" * 5000 + "]" * 5000), 2, "prior_therapies",
                                ("nested more than 32 levels",)),
    "duplicated key in JSON cell": ("t.csv", lambda: _prior_rows('[{"therapy": "ssa", "therapy": "prrt"}]'), 2,
                                    "prior_therapies.0.therapy", ("appears more than once",)),
    "huge JSON cell": ("t.csv", lambda: _prior_rows(json.dumps([{"therapy": "ssa"}] * 30_001)), 2, "prior_therapies",
                       ("larger than 256 KiB",)),
    "30,001 empty records": ("t.csv", lambda: _prior_rows("[" + ",".join(["{}"] * 30_001) + "]"), 2,
                             "prior_therapies.0.therapy", ()),
    "infinite number in JSON cell": ("t.csv", lambda: _prior_rows('[{"therapy": "ssa", "months_to_progression": 1e999}]'),
                                     2, "prior_therapies.0.months_to_progression", ("not a finite number",)),
    "broken JSON cell": ("t.csv", lambda: _prior_rows('[{"therapy": '), 2, "prior_therapies", ("not valid JSON",)),
    "huge text cell": ("t.csv", lambda: ("id,pathology.ki67_percent\ngood1,2\nbad," + "1" * 20_000
                                         + "\ngood2,4\n").encode(), 2, "pathology.ki67_percent",
                       ("cell of 20000 characters", f"at most {layout.MAX_CELL_CHARS}")),
    "mistyped column": ("t.csv", lambda: b"id,pathology.ki67_percnt\ngood1,\nbad,3\ngood2,\n", 2,
                        "pathology.ki67_percnt", ("unknown field", "ki67_percent")),
    "prior therapies as text (Parquet)": ("t.parquet", lambda: _parquet_bytes(pa.table({
        "id": ["good1", "bad", "good2"], "prior_therapies": [None, "ssa", None]})), 2, "prior_therapies",
        ("must be a list",)),
    "timestamp for a number (Parquet)": ("t.parquet", lambda: _parquet_bytes(pa.table({
        "id": ["good1", "bad", "good2"], "age_years": pa.array([None, dt.datetime(2020, 1, 1), None])})), 2,
        "age_years", ("not a JSON value",)),
    "broken JSON line": ("t.jsonl", lambda: b'{"id": "good1"}\n{"id": "bad", \n{"id": "good2"}\n', 2, "",
                         ("not valid JSON",)),
    "deeply nested JSON line": ("t.jsonl", lambda: ('{"id": "good1"}\n{"id": ' + "[" * 5000 + "]" * 5000
                                                    + '}\n{"id": "good2"}\n').encode(), 2, "id", ("nested more than",)),
    "JSON line larger than a document": ("t.jsonl", lambda: ('{"id": "good1"}\n{"id": "' + "a" * 300_000
                                                             + '"}\n{"id": "good2"}\n').encode(), 2, "",
                                         ("larger than 256 KiB",)),
    "duplicated key in JSON line": ("t.jsonl", lambda: (b'{"id": "good1"}\n{"id": "bad", "pathology": {"ki67_percent": 2, '
                                                        b'"ki67_percent": 30}}\n{"id": "good2"}\n'), 2,
                                    "pathology.ki67_percent", ("appears more than once",)),
    "20,000 keys in a JSON line": ("t.jsonl", lambda: ('{"id": "good1"}\n' + json.dumps({f"k{j}": 1 for j in range(20_000)})
                                                       + '\n{"id": "good2"}\n').encode(), 2, "", ()),
    "JSON line not an object": ("t.jsonl", lambda: b'{"id": "good1"}\n[1, 2]\n{"id": "good2"}\n', 2, "", ()),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_bad_row_is_named_and_the_rest_written(tmp_path, case):
    name, make, row, field, words = ROW_CASES[case]
    src, out, r = _run(tmp_path, name, make())
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert isinstance(r.exception, SystemExit)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    errors = pl.read_csv(tmp_path / "out.csv.errors.csv", infer_schema=False)
    assert set(errors["row"].to_list()) == {str(row)}, errors
    if field:
        assert field in errors["field"].to_list(), errors
    message = " ".join(errors["message"].to_list())
    for word in words:
        assert word in message, message
    assert f"row {row}:" in r.stderr
    assert pl.read_csv(out)["id"].to_list() == ["good1", "good2"]


# --------------------------------------------------------------------------- batches

def _table(n: int) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"p{i}" for i in range(n)], "pathology.ki67_percent": [float(i % 30) for i in range(n)]})


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_read_in_batches_of_batch_size(tmp_path, suffix):
    """2,500 rows in batches of 1,000: three batches (1,000, 1,000, 500) — read, laid out
    and written one at a time; the Parquet file has row groups of 1,000 rows."""
    src = tmp_path / f"in{suffix}"
    frame = _table(2500)
    if suffix == ".csv":
        frame.write_csv(src)
    elif suffix == ".jsonl":
        frame.write_ndjson(src)
    else:
        frame.write_parquet(src, row_group_size=1000)
    sizes = [b.height for b in layout.batches(src, 1000)]
    assert sizes == [1000, 1000, 500]
    seen: list[int] = []
    result = screen(src, tmp_path / "out.parquet", select=["classification.who_grade"], batch_size=1000,
                    progress=seen.append)
    assert seen == [1000, 1000, 500] and result.assessed == 2500
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups == 3


def test_csv_batches_do_not_depend_on_the_readers_blocks(tmp_path):
    """Small batches from a CSV file larger than one read block: every row once, in order,
    numbered from 1, no batch larger than asked."""
    src = tmp_path / "in.csv"
    frame = _table(450_000)
    frame.write_csv(src)
    assert src.stat().st_size > 4 * layout.MAX_LINE_BYTES   # more than one block of pyarrow's reader
    got = list(layout.batches(src, 100_000))
    assert [b.height for b in got] == [100_000] * 4 + [50_000]
    rows = pl.concat(got)
    assert rows["__row"].to_list() == list(range(1, 450_001))
    assert rows["id"].to_list() == frame["id"].to_list()


def test_cohort_refuses_a_malformed_file_in_one_line(tmp_path):
    src = tmp_path / "reg.csv"
    src.write_bytes("id,treatment,time_months,event\nJos\xe9,liver_resection,12,1\n".encode("latin-1"))
    r = CliRunner().invoke(app, ["cohort", str(src)])
    assert r.exit_code == 2, (r.stderr, r.exception)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"nelm: {src}: ") and "not UTF-8" in lines[0]
