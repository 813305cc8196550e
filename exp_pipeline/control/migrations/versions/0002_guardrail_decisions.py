"""Guardrail decisions: per-experiment aggregate snapshots, trigger rows, decision keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guardrail_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("sequential_state", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_guardrail_snapshots_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrail_snapshots")),
        sa.UniqueConstraint("experiment_id", name=op.f("uq_guardrail_snapshots_experiment_id")),
    )
    op.create_table(
        "guardrail_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_key", sa.String(length=255), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("experiment_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("metric_key", sa.String(length=255), nullable=True),
        sa.Column("variant", sa.String(length=255), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("observation_window_minutes", sa.Integer(), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_guardrail_triggers_experiment_id_experiments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrail_triggers")),
        sa.UniqueConstraint("decision_key", name=op.f("uq_guardrail_triggers_decision_key")),
    )
    # Outcomes written before this revision get a key derived from their row id.
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision_key", sa.String(length=255), nullable=True))
    op.execute("UPDATE outcomes SET decision_key = 'legacy:' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.alter_column("decision_key", existing_type=sa.String(length=255), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_outcomes_decision_key"), ["decision_key"])


def downgrade() -> None:
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_outcomes_decision_key"), type_="unique")
        batch_op.drop_column("decision_key")
    op.drop_table("guardrail_triggers")
    op.drop_table("guardrail_snapshots")
