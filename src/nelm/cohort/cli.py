"""``nelm cohort``: run the analysis, write the report, name the refused rows; exit 2 when
a row was refused (the others are analysed, as in ``nelm screen``) or an option is wrong."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console


def run_cli(source: Path, *, design: str | None, group: str | None, covariates: str | None, endpoint: str | None,
            out: Path | None, fmt: str | None, seed: int, caliper: float) -> int:
    from ..screen.layout import input_format
    from .analysis import analyse
    from .report import render_html, render_text

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if fmt is None:
        fmt = {".html": "html", ".htm": "html", ".json": "json"}.get(out.suffix.lower(), None) if out else "text"
        if fmt is None:
            err.print(f"nelm: --out {out}: the report is .html or .json (or give --format)", markup=False)
            return 2
    try:
        input_format(source)
        if not source.is_file():
            raise ValueError(f"{source}: no such file")
        result = analyse(source, design=design, group=group, covariates=covariates, endpoint=endpoint, seed=seed,
                         caliper_sd=caliper, figures=fmt == "html", source_name=source.name)
    except ValueError as exc:
        err.print(f"nelm: {exc}", markup=False)
        return 2
    problems = result.report["problems"]
    for p in problems[:20]:
        err.print(f"  row {p['row']}: {p['field'] or '(document)'}: {p['message']}", markup=False)
    if problems:
        rows = result.report["flow"]["rows_invalid"]
        more = " (first 20 shown; all in the report)" if len(problems) > 20 else ""
        err.print(f"nelm: {rows} invalid row(s) left out{more}", markup=False)
    if out or fmt != "text":   # the text report on standard output lists them itself
        for w in result.report["warnings"]:
            err.print(f"warning: {w['message']}", markup=False)
    if fmt == "json":
        text = json.dumps(result.report, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    elif fmt == "html":
        text = render_html(result)
    else:
        text = render_text(result)
    if out:
        out.write_text(text, encoding="utf-8")
        err.print(f"report written to {out}", markup=False)
    else:
        sys.stdout.write(text)
    return result.exit_code
