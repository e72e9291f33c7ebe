"""Alembic's environment for the package's migrations.

``dashboard.db`` configures Alembic in code and hands over the connection to migrate in
``config.attributes["connection"]``: use ``study-monitor db upgrade`` and ``study-monitor db
revision`` rather than the plain ``alembic`` command (there is no alembic.ini).
"""

from alembic import context
from sqlmodel import SQLModel

import dashboard.models  # noqa: F401  (registers every table on SQLModel.metadata)

if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: migrate a database instead")

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("no connection to migrate: run the migrations with `study-monitor db upgrade`")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite alters most things only by copying the table; batch operations do that there and
    # plain ALTERs on PostgreSQL, so one migration serves both.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
