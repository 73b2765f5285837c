"""Alembic environment for the case store, driven from code (see ``nelm.store.db.migrate``).

The caller hands over an open connection in ``config.attributes["connection"]``; a
``sqlalchemy.url`` main option is the fallback (for a DBA running Alembic by hand with an
ini file that sets script_location to this folder). Logging is left alone on purpose:
the server owns the logging configuration.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from nelm.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
