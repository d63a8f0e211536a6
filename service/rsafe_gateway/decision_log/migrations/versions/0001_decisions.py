"""The decisions table (decisions and appeals) and the reviews table.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        # Request ids come from callers (X-Request-ID) and need not be unique: `seq` is the key.
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),  # decision | appeal
        sa.Column("appeal_of", sa.Text),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Text, nullable=False),
        sa.Column("policy_sha256", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("model_family", sa.Text),
        sa.Column("template_version", sa.Text, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("reasoning", sa.Text),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("fail_mode", sa.Text),
        sa.Column("failure", sa.Text),
        sa.Column("content_sha256", sa.Text, nullable=False),
        sa.Column("content", postgresql.JSONB),
    )
    op.create_index("decisions_id", "decisions", ["id"])
    op.create_index("decisions_created_at", "decisions", ["created_at"])
    op.create_index("decisions_tenant_seq", "decisions", ["tenant", "seq"])
    op.create_index(
        "decisions_appeal_of", "decisions", ["appeal_of"], postgresql_where="appeal_of IS NOT NULL"
    )
    op.create_table(
        "reviews",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("decision_id", sa.Text, nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer_key_id", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),  # upheld | overturned
        sa.Column("verdict", sa.Text),
        sa.Column("note", sa.Text),
    )
    op.create_index("reviews_decision_id", "reviews", ["decision_id"])
    op.create_index("reviews_created_at", "reviews", ["created_at"])


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_table("decisions")
