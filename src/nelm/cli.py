"""The `nelm` command: assess a patient, print the schema, browse the evidence."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .patient import InvalidPatient, json_schema, load_patient

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Decision support for neuroendocrine liver metastases (supports, never replaces, the tumour board).")


class Format(str, Enum):
    text = "text"
    json = "json"


def _refuse(path: str, exc: InvalidPatient) -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"nelm: {path} is not a valid patient document:", markup=False)
    for field, msg in exc.problems:
        err.print(f"  - {field or '(document)'}: {msg}", markup=False)
    raise typer.Exit(2)


def _guideline_or_exit(guideline: str | None) -> str | None:
    from .knowledge import load

    try:
        load(guideline)
    except ValueError as exc:
        if guideline and str(exc).startswith("unknown guideline"):
            Console(stderr=True).print(f"nelm: {exc}", markup=False)
            raise typer.Exit(2)
        raise
    return guideline


@app.command()
def assess(
    file: Path = typer.Argument(..., help="patient document, JSON or YAML"),
    format: Format = typer.Option(Format.text, "--format", "-f", help="text for a person, json for a program"),
    guideline: Optional[str] = typer.Option(None, "--guideline", "-g",
                                            help="which source governs where sources disagree (default: the two reviews)"),
) -> None:
    """Assess one patient: classification, criteria, a verdict for every option, missing data."""
    from .assessment import assess as run

    try:
        patient = load_patient(file)
    except InvalidPatient as exc:
        _refuse(str(file), exc)
    result = run(patient, _guideline_or_exit(guideline))
    if format is Format.json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    else:
        from .text import render

        render(result, Console(highlight=False, width=max(100, Console().width)))


@app.command()
def schema() -> None:
    """Print the JSON Schema of the patient document."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def evidence(
    format: Format = typer.Option(Format.text, "--format", "-f"),
    option: Optional[str] = typer.Option(None, "--option", help="only records informing this option id"),
    search: Optional[str] = typer.Option(None, "--search", help="case-insensitive text to look for"),
) -> None:
    """List the evidence records the verdicts cite."""
    from .evidence_view import select, render_table

    records = select(option=option, search=search)
    if format is Format.json:
        sys.stdout.write(json.dumps({"records": [r.model_dump(mode="json") for r in records]},
                                    indent=2, ensure_ascii=False) + "\n")
    else:
        render_table(records, Console(highlight=False, width=max(120, Console().width)))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to bind; another than localhost needs NELM_API_TOKEN"),
    port: int = typer.Option(8000),
    database: Optional[str] = typer.Option(None, envvar="NELM_DATABASE_URL",
                                           help="SQLAlchemy URL; default an SQLite file in the user data directory"),
) -> None:
    """Start the tumour-board web application and REST API."""
    from .web.serve import run

    run(host=host, port=port, database=database)


@app.command()
def report(
    file: Path = typer.Argument(..., help="patient document, JSON or YAML"),
    out: Path = typer.Option(..., "--out", "-o", help="report path ending in .html or .pdf"),
    guideline: Optional[str] = typer.Option(None, "--guideline", "-g"),
) -> None:
    """Write the printable tumour-board report (HTML or PDF)."""
    from .assessment import assess as run
    from .report import build_html, build_pdf

    if out.suffix.lower() not in (".html", ".pdf"):
        Console(stderr=True).print("nelm: --out must end in .html or .pdf", markup=False)
        raise typer.Exit(2)
    try:
        patient = load_patient(file)
    except InvalidPatient as exc:
        _refuse(str(file), exc)
    result = run(patient, _guideline_or_exit(guideline))
    if out.suffix.lower() == ".pdf":
        out.write_bytes(build_pdf(patient, result))
    else:
        out.write_text(build_html(patient, result), encoding="utf-8")
    print(f"report written to {out}")


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # no traceback reaches a user; say what failed
        print(f"nelm: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
