"""Alembic environment. `cds.store.db.upgrade` passes an open connection; otherwise the URL option is used.

A schema change: edit `cds/store/schema.py`, then generate the revision against an up-to-date database,
review it, and give it the next number:

    from alembic import command
    from cds.store.db import alembic_config
    cfg = alembic_config("sqlite:///data/cds.sqlite3")
    command.revision(cfg, message="...", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from cds.store.schema import metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
