"""``nelm screen INPUT --out OUTPUT``: a table of patients in, a table of assessments out.

The input is read in batches (:func:`.layout.batches`: one batch of at most
``batch_size`` rows held at a time), so a file larger than memory is screened batch by
batch: each batch is laid out, validated, flattened, evaluated and appended to the output. Invalid rows are reported (row number, dotted field, the
model's message) on standard error and in ``<output>.errors.csv``, and left out; the
other rows are assessed. The output keeps the input's ``id`` column, or else ``row``
(the 1-based input row number), so that each result can be traced to its row.

The plans one evaluation leaves open (resting on assumed facts) are settled together for
consecutive batches, as long as they are at most ``batch_size`` open rows and ``2 * batch_size``
rows in all (:func:`.columns.settle_open`): the settling costs a dozen evaluations of the whole
knowledge base whatever the number of rows, and a row's plan is settled from its own record
alone. The batches are written in order once their open rows are settled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl

from ..knowledge import load
from . import layout, validate
from .columns import FirstPass, first_pass, selected, settle_open
from .summary import Summary


@dataclass
class ScreenResult:
    rows: int = 0
    assessed: int = 0
    assumed: int = 0    # rows one evaluation leaves open: plans resting on assumed facts, settled in rounds (screen/settle.py)
    problems: list[layout.RowProblem] = field(default_factory=list)
    summary: Summary | None = None
    columns: list[str] = field(default_factory=list)


class _Writer:
    """Appends batches to a CSV, Parquet or JSON Lines file."""

    def __init__(self, path: Path):
        self.path, self.fmt, self.parquet = path, layout.input_format(path), None
        self.started = False
        self.key: str | None = None   # the output's identifying column: the input's id, else row

    def abandon(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.started:
            self.path.unlink(missing_ok=True)

    def write(self, frame: pl.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            table = frame.to_arrow()
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table)
        else:
            with open(self.path, "ab" if self.started else "wb") as fh:
                if self.fmt == "csv":
                    frame.write_csv(fh, include_header=not self.started)
                else:
                    frame.write_ndjson(fh)
        self.started = True

    def close(self, columns: list[str]) -> None:
        if self.parquet is not None:
            self.parquet.close()
        elif not self.started:   # no valid row: still a well-formed (empty) table
            self.write(pl.DataFrame(schema={c: pl.String for c in columns}))


def screen(source: str | Path, out: str | Path, *, select: list[str] | None = None, guideline: str | None = None,
           batch_size: int = 200_000, progress: Callable[[int], None] | None = None) -> ScreenResult:
    """Screen a table; see the module docstring. ``progress`` is told the rows done per batch."""
    kb = load(guideline)
    fmt = layout.input_format(source)
    out = Path(out)
    layout.input_format(out)   # refuse an unknown output format before reading anything
    columns = selected(kb, select)
    result = ScreenResult(columns=columns, summary=Summary())
    writer = _Writer(out)
    try:
        _screen_batches(source, fmt, batch_size, kb, columns, result, writer, progress)
    except layout.TableError:   # a file that is not a table after all: no half-written output left behind
        writer.abandon()
        raise
    writer.close([writer.key or "row", *columns])
    result.problems.sort(key=lambda p: (p.row, p.field))
    if result.problems:
        errors = out.with_name(out.name + ".errors.csv")
        pl.DataFrame([{"row": p.row, "field": p.field, "message": p.message} for p in result.problems],
                     schema={"row": pl.Int64, "field": pl.String, "message": pl.String}).write_csv(errors)
    return result


def _screen_batches(source: str | Path, fmt: str, batch_size: int, kb: Any, columns: list[str], result: ScreenResult,
                    writer: _Writer, progress: Callable[[int], None] | None) -> None:
    held: list[tuple[pl.DataFrame, FirstPass]] = []   # batches evaluated once, their open rows not yet settled

    def flush() -> None:
        for (ident, _), assessed in zip(held, settle_open(kb, [b for _, b in held])):
            result.summary.add(assessed)
            writer.write(ident.hstack(assessed))
        held.clear()

    for raw in layout.batches(source, batch_size):
        frame, problems = layout.to_layout(raw, fmt)
        frame = layout.complete(frame)
        found, patients = validate.checked(frame)
        problems += found
        bad = {p.row for p in problems}
        result.problems += problems
        result.rows += raw.height
        ok = layout.typed(frame.filter(~pl.col("__row").is_in(list(bad)))) if bad else layout.typed(frame)
        if writer.key is None:
            writer.key = "id" if "id" in raw.columns else "row"
        if ok.height:
            # every row valid: the engine frame the consistency checks read is the one to assess
            batch = first_pass(ok, kb, columns, patients=None if bad else patients)
            result.assumed += batch.assumed
            result.assessed += ok.height
            ident = ok.select(pl.col("id") if writer.key == "id" else pl.col("__row").cast(pl.Int64).alias("row"))
            if held and (sum(b.assumed for _, b in held) + batch.assumed > batch_size
                         or sum(i.height for i, _ in held) + ok.height > 2 * batch_size):
                flush()
            held.append((ident, batch))
        if progress:
            progress(raw.height)
    flush()


def chart_path(out: str | Path, kind: str) -> Path:
    out = Path(out)
    return out.with_name(out.name + f".summary.{kind}")


def run_cli(source: Path, out: Path, select: list[str] | None, guideline: str | None, chart: str,
            batch_size: int, console: Any, err: Any) -> int:
    """The command: progress bar, invalid rows, summary and chart; the exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = layout.count_rows(source)
    with Progress(TextColumn("screening"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("screen", total=total)
        result = screen(source, out, select=select, guideline=guideline, batch_size=batch_size,
                        progress=lambda n: bar.advance(task, n))
    for p in result.problems[:20]:
        err.print(f"  row {p.row}: {p.field or '(document)'}: {p.message}", markup=False)
    if result.problems:
        rows = len({p.row for p in result.problems})
        more = f" (first 20 shown; all in {out.name}.errors.csv)" if len(result.problems) > 20 else \
            f" (also in {out.name}.errors.csv)"
        err.print(f"nelm: {rows} invalid row(s) left out{more}", markup=False)
    result.summary.print(console, result)
    if chart != "none" and result.assessed:
        path = chart_path(out, chart)
        result.summary.chart(path)
        console.print(f"chart: {path}", markup=False)
    return 2 if result.problems else 0
