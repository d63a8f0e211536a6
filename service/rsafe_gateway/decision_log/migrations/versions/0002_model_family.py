"""The model family of every decision: earlier rows filled in, and an index to filter by it.

Revision 0001 created `model_family` (nullable) but the gateway wrote NULL there while it served
one family. From this revision on the writer records the guard format's family; the rows
written before are filled in from their template version: every template of that time was an
`rsafe-…` one, the only family the gateway could serve. The column stays nullable, so a gateway
of the previous release still writing during a rolling upgrade (its NULL) is not refused.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE decisions SET model_family = 'rsafe' "
        "WHERE model_family IS NULL AND template_version LIKE 'rsafe-%'"
    )
    op.create_index("decisions_model_family_seq", "decisions", ["model_family", "seq"])


def downgrade() -> None:
    # The filled-in families stay: 0001's column accepts them.
    op.drop_index("decisions_model_family_seq", table_name="decisions")
