"""The `nelm` command: assess a patient, print the schema, browse the evidence."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .patient import OPTION_IDS, InvalidPatient, Patient, json_schema

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Decision support for neuroendocrine liver metastases (supports, never replaces, the tumour board).")


def _guidelines() -> str:
    """The --guideline values, read from the knowledge base's manifest (cheap: one small YAML file)."""
    from .knowledge import KNOWLEDGE_DIR
    from .yamlio import read_yaml

    return ", ".join(read_yaml(KNOWLEDGE_DIR / "manifest.yaml")["guidelines"])


GUIDELINE_HELP = f"which source governs where sources disagree (default: the two reviews); one of {_guidelines()}"


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"nelm {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Decision support for neuroendocrine liver metastases (supports, never replaces, the tumour board)."""


class Format(str, Enum):
    text = "text"
    json = "json"


def _refuse(path: str, exc: InvalidPatient) -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"nelm: {path} is not a valid patient document:", markup=False)
    for field, msg in exc.problems:
        err.print(f"  - {field or '(document)'}: {msg}", markup=False)
    raise typer.Exit(2)


def _load_patient(path: Path) -> Patient:
    """A patient document file through the input gate; one byte-order mark is allowed, a
    second (a file saved twice by tools that each add one) is refused, not read as text."""
    from .inputgate import read_file
    from .patient import parse_text, validate_patient

    text, fmt = read_file(path)  # drops the one byte-order mark UTF-8 may start with
    if text.startswith("\ufeff"):
        raise InvalidPatient([("", "the file starts with more than one byte-order mark (U+FEFF); save it as "
                                   "UTF-8 with at most one")])
    return validate_patient(parse_text(text, fmt))


def _tolerant_stdout() -> bool:
    """Make standard output unable to fail on odd Unicode; True when it is UTF-8.

    Characters the terminal's encoding cannot show (or a lone surrogate from a file name)
    are written as backslash escapes instead of ending the command with exit 1. The JSON
    output is ASCII-only (``\\uXXXX`` escapes) when the stream is not UTF-8, so it stays
    valid JSON whatever the locale.
    """
    out = sys.stdout
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):  # a stream that cannot be reconfigured keeps its settings
            pass
    return (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "") == "utf8"


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
    files: Optional[list[Path]] = typer.Argument(None, help="patient documents, JSON or YAML (one or several)"),
    format: Format = typer.Option(Format.text, "--format", "-f", help="text for a person, json for a program "
                                  "(several files: a JSON array, in the order given)"),
    guideline: Optional[str] = typer.Option(None, "--guideline", "-g", help=GUIDELINE_HELP),
    fhir: Optional[Path] = typer.Option(None, "--fhir", help="read the patient from a FHIR R4 Bundle (JSON) "
                                        "instead of a patient document"),
    outcomes: str = typer.Option("summary", "--outcomes", help="summary: matched cohorts with their reported points "
                                 "and fitted model; full: also each survival curve sampled for drawing"),
    explain: bool = typer.Option(False, "--explain", help="text: also each rule's full logic (every input it read, "
                                 "and each open rule of an undetermined option)"),
) -> None:
    """Assess patients: classification, criteria, a verdict for every option, missing data."""
    from .assessment import assess as run

    utf8 = _tolerant_stdout()
    files = files or []
    if bool(files) == (fhir is not None):
        Console(stderr=True).print("nelm: give patient documents FILE... or --fhir BUNDLE (one of them)", markup=False)
        raise typer.Exit(2)
    if outcomes not in ("summary", "full"):
        Console(stderr=True).print(f"nelm: --outcomes {outcomes!r} is not known; allowed: summary, full", markup=False)
        raise typer.Exit(2)
    imported = None
    patients = []
    refused = False
    try:
        if fhir is not None:
            from .fhir.reader import read_bundle_file  # FHIR is read only when asked for

            imported = read_bundle_file(fhir)
            patients.append((fhir, imported.patient()))
    except InvalidPatient as exc:
        _refuse(str(fhir), exc)
    for file in files:
        try:
            patients.append((file, _load_patient(file)))  # through the input gate (nelm.inputgate)
        except InvalidPatient as exc:
            if len(files) == 1:
                _refuse(str(file), exc)
            try:
                _refuse(str(file), exc)
            except typer.Exit:
                refused = True  # the others are still assessed; the exit code says one was refused
    guideline = _guideline_or_exit(guideline)
    results = []
    for _, patient in patients:
        result = run(patient, guideline, outcomes=outcomes)
        if imported is not None:
            result["fhir_import"] = imported.to_dict()  # what was read from where: provenance, conflicts, unread
        results.append(result)
    if format is Format.json:
        doc = results[0] if len(files) <= 1 and results else results
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=not utf8, allow_nan=False) + "\n")
    else:
        from .text import render

        console = Console(highlight=False, width=max(100, Console().width))
        for (path, _), result in zip(patients, results):
            if len(files) > 1:
                console.rule(str(path))
            render(result, console, explain=explain)
            if imported is not None:
                from .fhir.text import render_import

                render_import(imported, console)
    if refused:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the patient document."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def evidence(
    format: Format = typer.Option(Format.text, "--format", "-f"),
    option: Optional[str] = typer.Option(None, "--option", help="only records informing this option id: "
                                         + ", ".join(OPTION_IDS)),
    search: Optional[str] = typer.Option(None, "--search", help="case-insensitive text to look for"),
    sort: str = typer.Option("year", "--sort", help="year (newest first), level (strongest first) or modality"),
) -> None:
    """List the evidence records the verdicts cite."""
    from .evidence_view import SORTS, render_table, select

    if sort not in SORTS:
        Console(stderr=True).print(f"nelm: --sort {sort!r} is not known; allowed: {', '.join(SORTS)}", markup=False)
        raise typer.Exit(2)
    records = select(option=option, search=search, sort=sort)
    if format is Format.json:
        sys.stdout.write(json.dumps({"records": [r.model_dump(mode="json") for r in records]},
                                    indent=2, ensure_ascii=False) + "\n")
    else:
        render_table(records, Console(highlight=False))  # the terminal's width (COLUMNS), never wider


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to bind; one not on loopback (127.0.0.0/8, ::1, localhost) "
                                                "needs NELM_API_TOKEN"),
    port: int = typer.Option(8000),
    database: Optional[str] = typer.Option(None, envvar="NELM_DATABASE_URL",
                                           help="SQLAlchemy URL; default an SQLite file in the user data directory"),
    allow_broken_chain: bool = typer.Option(False, "--allow-broken-chain", envvar="NELM_ALLOW_BROKEN_CHAIN",
                                            help="serve even if the case store's hash chain is broken or "
                                                 "cannot be verified against its signed anchors (otherwise the "
                                                 "start is refused with exit code 3)"),
    allowed_hosts: Optional[str] = typer.Option(
        None, "--allowed-hosts", envvar="NELM_ALLOWED_HOSTS", metavar="NAMES",
        help="comma-separated host names clients use for this server, besides 127.0.0.1, localhost, ::1, "
             "--host and the address they connect to; requests naming any other host get 400"),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", envvar="NELM_SECURE_COOKIES",
                                        help="mark cookies Secure even over plain HTTP (behind an HTTPS proxy)"),
    examples: Optional[Path] = typer.Option(None, "--examples", metavar="DIR",
                                            help="load the patient documents of DIR into the case store when it "
                                                 "holds no case yet (a first run then shows them)"),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="worker processes sharing the port (one per core serves the most requests)"),
) -> None:
    """Start the tumour-board web application and REST API."""
    import os

    from .web.security import ALLOWED_HOSTS_ENV, SECURE_COOKIES_ENV, parse_hosts
    from .web.serve import run

    try:
        hosts = parse_hosts(allowed_hosts or "")
    except ValueError as exc:
        Console(stderr=True).print(f"nelm: --allowed-hosts: {exc}", markup=False)
        raise typer.Exit(2)
    try:
        hosts += parse_hosts(host)  # the bound name is allowed too (uvicorn reports a bad one itself)
    except ValueError:
        pass
    # create_app reads both settings from the environment (serve.run passes on only database and token)
    os.environ[ALLOWED_HOSTS_ENV] = ",".join(hosts)
    os.environ[SECURE_COOKIES_ENV] = "1" if secure_cookies else ""
    run(host=host, port=port, database=database, allow_broken_chain=allow_broken_chain, workers=workers,
        examples=str(examples) if examples else None)


audit_app = typer.Typer(no_args_is_help=True,
                        help="Tamper evidence of the case store: the hash-chained audit log and case versions.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    database: Optional[str] = typer.Option(None, "--database", envvar="NELM_DATABASE_URL",
                                           help="SQLAlchemy URL; default the SQLite file in the user data directory"),
    anchors: Optional[Path] = typer.Option(None, "--anchors", metavar="FILE",
                                           help="the signed checkpoints to check the chains against (default: "
                                                "NELM_ANCHORS, else anchors.jsonl beside the key)"),
    key: Optional[Path] = typer.Option(None, "--key", metavar="FILE",
                                       help="the Ed25519 key the checkpoints were signed with, public or private "
                                            "PEM (default: NELM_ANCHOR_KEY, else anchor-key.pem in the user "
                                            "config directory)"),
    format: Format = typer.Option(Format.text, "--format", "-f", help="text for a person, json for a program"),
) -> None:
    """Re-compute the hash chains of the audit log and the case versions, check the cases table against them, and check both chains against the signed checkpoints; change nothing.

    Prints each chain's row count and head hash, or its first broken link: table, row id, expected and found hash; then what the signed checkpoints pin, or what they expose by name (forged append, rewrite, truncated tail, backdated head). A store from before the anchors (migration 0003_anchors) is checked without them.

    Exit status: 0 both chains verified; 3 a chain is broken; 2 nothing to verify (no such database, not reachable, not a nelm case store, or one older than the hash chains, or no anchor key).
    """
    from .store import ChainUnavailable, default_database_url, display_url, verify_database
    from .store import anchors as anchor_files
    from .store.chain import AnchorCheck

    url = database or default_database_url(create=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        path = anchors or anchor_files.anchors_path()
        if anchors is not None and not path.is_file():
            raise ChainUnavailable(f"no anchors file at {path}")
        check = None
        # without a key there is nothing to check signatures with: said below, not a break
        if anchors is not None or key is not None or anchor_files.key_path().is_file():
            check = AnchorCheck(path, anchor_files.load_verify_key(key))
        try:
            report = verify_database(url, check)
        except ChainUnavailable as exc:
            if check is None or anchors is not None or "store_identity" not in str(exc):
                raise
            report = verify_database(url)  # a store from before the anchors
        if check is None and report.store is not None:
            raise anchor_files.AnchorError(
                f"the store is anchored (store {report.store}) but there is no anchor key at "
                f"{anchor_files.key_path()} to check its signed checkpoints with: pass --key (the public key "
                f"anchor-key.pub is enough) or set {anchor_files.KEY_ENV}")
    except (ChainUnavailable, anchor_files.AnchorError) as exc:
        err.print(f"nelm: cannot verify {display_url(url)}: {exc}", markup=False)
        raise typer.Exit(2)
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, not a database: say so, no traceback
        first_line = (str(exc).strip().splitlines() or [""])[0]
        err.print(f"nelm: cannot verify {display_url(url)}: {type(exc).__name__}: {first_line}", markup=False)
        raise typer.Exit(2)
    if format is Format.json:
        sys.stdout.write(json.dumps({"database": display_url(url)} | report.to_dict(), indent=2) + "\n")
    else:
        print(f"case store {display_url(url)}")
        if report.anchors is None:
            print("NOTE not checked against signed anchors (a store from before them: start `nelm serve` once)")
        else:
            print(f"anchors {report.anchors}")
        print("\n".join(report.lines()))
    raise typer.Exit(0 if report.ok else 3)


@app.command()
def report(
    file: Path = typer.Argument(..., help="patient document, JSON or YAML"),
    out: Path = typer.Option(..., "--out", "-o", help="report path ending in .html or .pdf"),
    guideline: Optional[str] = typer.Option(None, "--guideline", "-g", help=GUIDELINE_HELP),
    full: bool = typer.Option(False, "--full", help="the whole report (criteria, every reason, the evidence table) "
                                                    "instead of the two-page board summary"),
) -> None:
    """Write the printable tumour-board report: a two-page board summary (PDF or HTML), or with --full the whole report."""
    from .assessment import assess as run
    from .report import build_html, build_pdf

    if out.suffix.lower() not in (".html", ".pdf"):
        Console(stderr=True).print("nelm: --out must end in .html or .pdf", markup=False)
        raise typer.Exit(2)
    _tolerant_stdout()
    try:
        patient = _load_patient(file)
    except InvalidPatient as exc:
        _refuse(str(file), exc)
    result = run(patient, _guideline_or_exit(guideline))
    if out.suffix.lower() == ".pdf":
        out.write_bytes(build_pdf(patient, result, full=full))
    else:
        out.write_text(build_html(patient, result, full=full), encoding="utf-8")
    print(f"report written to {out}")


@app.command()
def screen(
    source: Path = typer.Argument(..., help="table of patients: .csv, .parquet or .jsonl (nested documents or dotted-path columns)"),
    out: Path = typer.Option(..., "--out", "-o", help="output table; its extension picks the format (.csv, .parquet, .jsonl)"),
    select: Optional[str] = typer.Option(None, "--select", help="output columns, comma-separated; patterns allowed "
                                         "(criteria.*, options.*.verdict, plan.leading)"),
    guideline: Optional[str] = typer.Option(None, "--guideline", "-g", help=GUIDELINE_HELP),
    chart: str = typer.Option("png", "--chart", help="summary chart next to the output: png, svg or none"),
    batch_size: int = typer.Option(200_000, "--batch-size", min=1_000, max=10_000_000, help="rows per batch"),
) -> None:
    """Screen a table of patients: classification, criteria, verdicts and the leading plan option per row."""
    from .screen.layout import input_format
    from .screen.run import run_cli

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if chart not in ("png", "svg", "none"):
        err.print("nelm: --chart must be png, svg or none", markup=False)
        raise typer.Exit(2)
    try:
        input_format(source)
        input_format(out)
        if not source.is_file():
            raise ValueError(f"{source}: no such file")
        code = run_cli(source, out, [s.strip() for s in select.split(",") if s.strip()] if select else None,
                       _guideline_or_exit(guideline), chart, batch_size, Console(highlight=False), err)
    except ValueError as exc:
        err.print(f"nelm: {exc}", markup=False)
        raise typer.Exit(2)
    raise typer.Exit(code)


class Dialect(str, Enum):
    postgres = "postgres"
    duckdb = "duckdb"
    spark = "spark"


@app.command()
def sql(
    dialect: Optional[Dialect] = typer.Option(None, "--dialect", help="SQL dialect of the database (default: the "
                                              "--database URL's, else postgres)"),
    table: Optional[str] = typer.Option(None, "--table", help="table of patients the view reads (columns named by "
                                        "dotted field path, see README)"),
    view: str = typer.Option("nelm_assessment", "--view", help="name of the view"),
    guideline: Optional[str] = typer.Option(None, "--guideline", "-g", help=GUIDELINE_HELP),
    columns: Optional[str] = typer.Option(None, "--columns", help="the table's columns, comma-separated (dotted "
                                          "field paths): the view reads only these; every other column it needs is "
                                          "unknown (NULL), as nelm screen takes a column its input lacks"),
    database: Optional[str] = typer.Option(None, "--database", help="read the table's columns from this database "
                                           "(SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/db, or "
                                           "duckdb:///file.duckdb), as --columns"),
    select: Optional[str] = typer.Option(None, "--select", help="output columns, comma-separated, as nelm screen "
                                         "names them; patterns allowed (criteria.*, options.*.verdict, plan.leading): "
                                         "the view computes only these"),
    id_column: str = typer.Option("id", "--id-column", help="the table's column identifying the patient, kept as "
                                  "the view's id"),
    write_table: Optional[Path] = typer.Option(None, "--write-table", help="instead of the view: read this table of "
                                               "patients (anything nelm screen reads) and write the table the view "
                                               "reads to --out"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="with --write-table: the table to write "
                                       "(.parquet, .csv or .jsonl), to load into the database as --table"),
    settle: bool = typer.Option(False, "--settle", help="instead of the bare view: a SQL script that also settles "
                                "the plans resting on assumed facts (which the view leaves NULL) in rounds inside "
                                "the database, as nelm screen does, and leaves a table named --view with nelm "
                                "screen's columns for every patient (its working tables and views dropped)"),
) -> None:
    """Print CREATE VIEW computing the screening columns inside a database, from the rules' own SQL;
    with --settle, a SQL script leaving a table with every column, plans on assumed facts settled;
    or, with --write-table INPUT --out TABLE, write the table that view reads."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def refuse(message: str) -> None:
        err.print(f"nelm: {message}", markup=False)
        raise typer.Exit(2)

    if write_table is not None:
        if out is None:
            refuse("--write-table needs --out (the table to write: .parquet, .csv or .jsonl)")
        raise typer.Exit(_write_sql_table(write_table, out, err))
    if table is None:
        refuse("give --table (the table the view reads), or --write-table INPUT --out TABLE to write it")
    if columns is not None and database is not None:
        refuse("give --columns or --database (which reads the table's columns), not both")
    from .screen.sql import build_view
    from .screen.sql_source import SourceError, dialect_of, shown, table_columns

    names = None
    if columns is not None:
        names = [c.strip() for c in columns.split(",") if c.strip()]
        if not names:
            refuse("--columns names no column (give the table's column names, comma-separated)")
    if settle and select:
        refuse("--settle gives every output column; leave out --select")
    try:
        if database is not None:
            # the database's own dialect unless --dialect says otherwise; a contradiction is a mistake
            found = dialect_of(database)
            if dialect is not None and found is not None and dialect.value != found:
                refuse(f"--dialect {dialect.value} does not match --database {shown(database)} ({found})")
            if dialect is None and found is None:
                refuse(f"cannot tell the SQL dialect of --database {shown(database)}; give --dialect "
                       f"({', '.join(d.value for d in Dialect)})")
            dialect_name = dialect.value if dialect is not None else found
            names = table_columns(database, table, dialect_name)
        else:
            dialect_name = dialect.value if dialect is not None else Dialect.postgres.value
        if settle:
            from .screen.sql_settle import settle_script

            sys.stdout.write(settle_script(table, view=view, dialect=dialect_name, guideline=_guideline_or_exit(guideline),
                                           id_column=id_column, columns=names))
            return
        built = build_view(table, view=view, dialect=dialect_name, guideline=_guideline_or_exit(guideline),
                           id_column=id_column, columns=names,
                           select=[s.strip() for s in select.split(",") if s.strip()] if select else None)
    except (SourceError, ValueError) as exc:
        refuse(str(exc))
    if built.unknown:
        # said aloud: a table whose columns are named otherwise (pathology_ki67_percent) would
        # otherwise give a view that runs and knows nothing
        needed = len([c for c in built.reads if c != id_column]) + len(built.unknown)
        err.print(f"nelm: table {table} lacks {len(built.unknown)} of the {needed} "
                  f"columns the view reads; they are unknown (NULL) in every row: {', '.join(built.unknown)}",
                  markup=False)
    sys.stdout.write(built.sql + "\n")


def _write_sql_table(source: Path, out: Path, err: Console) -> int:
    """The table ``nelm sql``'s view reads (:func:`nelm.screen.sql.sql_table`), from any input
    ``nelm screen`` reads, batch by batch; invalid rows are named and left out (exit 2)."""
    import polars as pl

    from .screen import layout, validate
    from .screen.sql import sql_table

    try:
        fmt = layout.input_format(source)
        kind = layout.input_format(out)
        if not source.is_file():
            raise ValueError(f"{source}: no such file")
    except ValueError as exc:
        err.print(f"nelm: {exc}", markup=False)
        return 2
    problems, written, parquet = [], 0, None
    out.unlink(missing_ok=True)
    for raw in layout.batches(source):
        frame, found = layout.to_layout(raw, fmt)
        frame = layout.complete(frame)
        found += validate.problems(frame)
        bad = {p.row for p in found}
        problems += found
        ok = layout.typed(frame.filter(~pl.col("__row").is_in(list(bad))) if bad else frame)
        if not ok.height:
            continue
        part = sql_table(ok)
        if kind == "parquet":
            import pyarrow.parquet as pq

            arrow = part.to_arrow()
            parquet = parquet or pq.ParquetWriter(out, arrow.schema)
            parquet.write_table(arrow)
        else:
            with open(out, "ab") as fh:
                part.write_csv(fh, include_header=not written) if kind == "csv" else part.write_ndjson(fh)
        written += part.height
    if parquet is not None:
        parquet.close()
    for p in sorted(problems, key=lambda p: (p.row, p.field)):
        err.print(f"nelm: row {p.row}: {p.field}: {p.message}", markup=False)
    print(f"{written} patients written to {out} (the table nelm sql's view reads)"
          + (f"; {len({p.row for p in problems})} invalid rows left out" if problems else ""))
    return 2 if problems else 0


@app.command()
def synth(
    n: int = typer.Option(..., "--n", min=1, max=100_000_000, help="number of patients"),
    out: Path = typer.Option(..., "--out", "-o", help=".csv, .parquet or .jsonl"),
    seed: int = typer.Option(0, "--seed", help="the same seed gives the same patients"),
    unknown_fraction: float = typer.Option(0.0, "--unknown-fraction", min=0.0, max=1.0,
                                           help="probability that each field is unknown"),
    registry: bool = typer.Option(False, "--registry", help="add treatment and follow-up (treatment, time_months, "
                                  "event, progression_*) drawn from published survival: input for nelm cohort"),
) -> None:
    """Write synthetic patients with the reviews' marginal distributions (for tests, demos, benchmarks)."""
    from .screen.layout import input_format
    from .screen.synth import synthesize, synthesize_registry, write_table

    try:
        input_format(out)
    except ValueError as exc:
        Console(stderr=True).print(f"nelm: {exc}", markup=False)
        raise typer.Exit(2)
    make = synthesize_registry if registry else synthesize
    write_table(make(n, seed=seed, unknown_fraction=unknown_fraction), out)
    print(f"{n} synthetic {'registry rows' if registry else 'patients'} written to {out}")


class CohortFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"


@app.command()
def cohort(
    source: Path = typer.Argument(..., help="registry table: .csv, .parquet or .jsonl (patient fields by dotted path, "
                                  "treatment, time_months or start_date/last_date, event; progression_* for PFS)"),
    design: Optional[str] = typer.Option(None, "--design", help="a named analysis recipe: mayo2011 (surgery vs "
                                         "intra-arterial therapy, propensity-matched)"),
    group: Optional[str] = typer.Option(None, "--group", help="column whose values form the groups (default: treatment)"),
    covariates: Optional[str] = typer.Option(None, "--covariates", help="Cox covariates, comma-separated: dotted fields, "
                                             "classification.*, criteria.*, options.*.verdict, plan.leading, derived.*; "
                                             "name:value for one value's indicator"),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="os (default) or pfs"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the report here (.html or .json)"),
    fmt: Optional[CohortFormat] = typer.Option(None, "--format", help="text, json or html (default: by --out's "
                                               "extension, else text)"),
    seed: int = typer.Option(0, "--seed", help="seed of the matching order"),
    caliper: float = typer.Option(0.2, "--caliper", help="matching caliper in SD of the logit of the propensity score"),
) -> None:
    """Outcome analysis of a registry: Table 1, Kaplan-Meier, log-rank, Cox, propensity matching, published curves."""
    from .cohort.cli import run_cli

    raise typer.Exit(run_cli(source, design=design, group=group, covariates=covariates, endpoint=endpoint, out=out,
                             fmt=fmt.value if fmt else None, seed=seed, caliper=caliper))


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
