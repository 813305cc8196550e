"""Alembic environment: migrations run on the connection ControlDatabase hands over."""

from alembic import context

from exp_pipeline.control.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through exp_pipeline.control.db.ControlDatabase.migrate")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite needs batch mode for ALTER TABLE in later revisions
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
