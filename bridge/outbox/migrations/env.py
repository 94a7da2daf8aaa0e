"""Alembic environment: migrations run on the connection the bridge hands over."""

from alembic import context

from bridge.outbox.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the bridge always passes a connection
    raise RuntimeError("run migrations with `bridge db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
