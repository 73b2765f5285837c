"""Connecting to the case store and bringing its schema up to date.

SQLite (a file in the user's data directory) is the default so that one clinician can
start the app with nothing installed; a hospital points ``--database`` /
``NELM_DATABASE_URL`` at PostgreSQL (``postgresql+psycopg://user@host/db``).
Migrations are Alembic's, run from code against the migrations shipped inside the
package, so an installed wheel migrates its own database on start-up.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from platformdirs import user_data_dir
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_FILENAME = "cases.sqlite3"


def default_database_url(create: bool = True) -> str:
    """An SQLite file in the platform's per-user data directory, created on first use
    (``create=False``: the folder is not made either)."""
    folder = Path(user_data_dir("nelm", appauthor=False))
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / DEFAULT_FILENAME}"


def display_url(url: str) -> str:
    """The URL with any password masked, fit for a terminal or a log."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while one writer commits; foreign keys are off by default in
    # SQLite; the busy timeout makes a second writer wait instead of failing at once.
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
    finally:
        cur.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    # hide_parameters: a database error must not carry the patient document into a log
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 10}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre-ping: a hospital database restarts under a long-running server
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to the newest migration, or to ``revision`` (a no-op when already
    there); an earlier revision is how the tests build a store as an older nelm left it."""
    cfg = alembic_config()
    with engine.begin() as connection:
        # env.py runs on this connection, so a search_path or an SQLite file given
        # through the URL applies to the migration exactly as to the app.
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return str(head)


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of the migrations shipped with this nelm."""
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown or malformed id
        return False


def is_older(revision: str | None, than: str) -> bool:
    """Whether the store at ``revision`` (None: no schema) comes before migration ``than``."""
    if revision == than:
        return False
    if revision is None:
        return True
    return any(r.revision == revision for r in _scripts().iterate_revisions(than, "base"))


def store_label(url: str) -> str:
    """The store's address as the anchors name it: the URL without a password, an SQLite
    file as an absolute path (so that the same file is the same store from any folder)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        parsed = parsed.set(database=str(Path(parsed.database).expanduser().resolve()))
    return parsed.render_as_string(hide_password=True)
