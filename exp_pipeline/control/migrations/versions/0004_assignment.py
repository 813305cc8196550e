"""Assignment: subject type, traffic, assignment version and forced (QA) assignments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("subject_type", sa.String(length=100), server_default="user", nullable=False)
        )
        batch_op.add_column(
            sa.Column("traffic_percentage", sa.Float(), server_default="100", nullable=False)
        )
        batch_op.add_column(
            sa.Column("assignment_version", sa.Integer(), server_default="1", nullable=False)
        )
    op.create_table(
        "forced_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(length=255), nullable=False),
        sa.Column("variant_key", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_forced_assignments_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forced_assignments")),
        sa.UniqueConstraint("experiment_id", "subject_id", name="uq_forced_assignments_subject"),
    )


def downgrade() -> None:
    op.drop_table("forced_assignments")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("assignment_version")
        batch_op.drop_column("traffic_percentage")
        batch_op.drop_column("subject_type")
