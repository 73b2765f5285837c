"""The columns a database table has, for ``nelm sql --database URL`` (the lean view:
:func:`nelm.screen.sql.build_view` with ``columns``).

A PostgreSQL (or any other SQLAlchemy) URL is read with ``sqlalchemy.inspect``; a
``duckdb:///path`` URL with the ``duckdb`` package itself (no SQLAlchemy dialect for
DuckDB is a dependency of nelm). Only the catalog is read, never a row. Every failure is a
:class:`SourceError`: one line naming the database (its password hidden) or the table and
what is wrong.
"""
from __future__ import annotations

from pathlib import Path

from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

# the view's dialect of a URL's backend (the part of the scheme before any +driver)
BACKEND_DIALECTS = {"postgresql": "postgres", "duckdb": "duckdb"}
CONNECT_TIMEOUT_SECONDS = 10   # a host that drops packets would otherwise hang the command


class SourceError(ValueError):
    """The database cannot be read, or has no such table: one line."""


def _url(url: str):  # -> sqlalchemy.engine.URL
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except ArgumentError:
        raise SourceError(f"--database {url!r} is not a database URL (e.g. postgresql+psycopg://user@host:5432/db "
                          "or duckdb:///path/to/file.duckdb)") from None


def shown(url: str) -> str:
    """The URL as messages show it: the password hidden."""
    try:
        return _url(url).render_as_string(hide_password=True)
    except SourceError:
        return url


def dialect_of(url: str) -> str | None:
    """The view's dialect for a database URL (None: the URL does not tell)."""
    return BACKEND_DIALECTS.get(_url(url).get_backend_name())


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc     # SQLAlchemy wraps the driver's error
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    return lines[0] if lines else type(orig).__name__


def table_columns(url: str, table: str, dialect: str) -> list[str]:
    """The column names of ``table`` (``name``, ``schema.name`` or ``catalog.schema.name``,
    written as in ``--table``: an unquoted name folds as ``dialect`` folds it) in the
    database at ``url``, in the table's order."""
    try:
        name = normalize_identifiers(exp.to_table(table, dialect=dialect), dialect=dialect)
    except ParseError:
        raise SourceError(f"--table {table!r} is not a table name") from None
    if _url(url).get_backend_name() == "duckdb":
        return _duckdb_columns(url, table, name)
    return _sqlalchemy_columns(url, table, name)


def _sqlalchemy_columns(url: str, table: str, name: exp.Table) -> list[str]:
    import sqlalchemy
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    parsed = _url(url)
    if name.catalog and name.catalog != parsed.database:
        raise SourceError(f"table {table} names database {name.catalog!r}, but --database connects to "
                          f"{parsed.database!r}")
    args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} if parsed.get_backend_name() == "postgresql" else {}
    try:
        engine = sqlalchemy.create_engine(parsed, connect_args=args, poolclass=sqlalchemy.pool.NullPool)
    except (ImportError, SQLAlchemyError) as exc:   # no such dialect or driver installed
        raise SourceError(f"cannot open database {shown(url)}: {_first_line(exc)}") from None
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise SourceError(f"cannot reach database {shown(url)}: {_first_line(exc)}") from None
        with conn:
            inspector = sqlalchemy.inspect(conn)
            schema = name.db or None
            if not inspector.has_table(name.name, schema=schema):
                raise SourceError(f"table {table} does not exist in {shown(url)}")
            return [c["name"] for c in inspector.get_columns(name.name, schema=schema)]
    except NoSuchTableError:
        raise SourceError(f"table {table} does not exist in {shown(url)}") from None
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot read table {table} in {shown(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()


def _duckdb_columns(url: str, table: str, name: exp.Table) -> list[str]:
    try:
        import duckdb
    except ImportError:
        raise SourceError("--database duckdb:///… needs the duckdb package (pip install duckdb)") from None
    path = _url(url).database
    if not path or path == ":memory:":
        raise SourceError(f"--database {url!r}: name a DuckDB file (duckdb:///path/to/file.duckdb)")
    if not Path(path).is_file():   # duckdb would create an empty database there
        raise SourceError(f"cannot open database {shown(url)}: no such file {path}")
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise SourceError(f"cannot open database {shown(url)}: {_first_line(exc)}") from None
    try:
        # DuckDB matches identifiers case-insensitively, quoted or not; parameters, not text
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE lower(table_name) = lower(?) "
            "AND lower(table_schema) = lower(coalesce(?, current_schema())) "
            "AND lower(table_catalog) = lower(coalesce(?, current_database())) ORDER BY ordinal_position",
            [name.name, name.db or None, name.catalog or None]).fetchall()
    except duckdb.Error as exc:
        raise SourceError(f"cannot read database {shown(url)}: {_first_line(exc)}") from None
    finally:
        con.close()
    if not rows:
        raise SourceError(f"table {table} does not exist in {shown(url)}")
    return [r[0] for r in rows]
