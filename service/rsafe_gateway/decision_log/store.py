"""Reading the decision log, and writing reviews (few, so written directly, not buffered).

Every query a non-admin caller can reach carries `tenant = %s`: another tenant's decision is not
found (404), never forbidden, so ids do not leak across tenants.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ..errors import DecisionLogUnavailable, InvalidRequest
from .record import COLUMNS, now
from .writer import WRITE_FAILURES

_Row = dict[str, Any]
_SELECT = sql.SQL("SELECT seq, {} FROM decisions").format(
    sql.SQL(", ").join(sql.Identifier(column) for column in COLUMNS)
)


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    since: datetime | None = None
    until: datetime | None = None
    verdict: str | None = None
    policy_id: str | None = None
    tenant: str | None = None
    kind: str | None = None
    model_family: str | None = None

    def where(self) -> tuple[list[sql.Composable], list[Any]]:
        clauses: list[sql.Composable] = []
        params: list[Any] = []
        for column, op, value in (
            ("created_at", ">=", self.since),
            ("created_at", "<", self.until),
            ("verdict", "=", self.verdict),
            ("policy_id", "=", self.policy_id),
            ("tenant", "=", self.tenant),
            ("kind", "=", self.kind),
            ("model_family", "=", self.model_family),
        ):
            if value is not None:
                clauses.append(sql.SQL("{} {} %s").format(sql.Identifier(column), sql.SQL(op)))
                params.append(value)
        return clauses, params


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, seq = text.partition(":")
        if version != "v1":
            raise ValueError(version)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("malformed cursor", param="cursor") from None


def _where(clauses: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(clauses)) if clauses else sql.SQL("")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("seq", None)
    return row


class DecisionStore:
    def __init__(self, pool: AsyncConnectionPool, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds

    async def _fetch(self, query: sql.SQL | sql.Composed, params: list[Any]) -> list[_Row]:
        try:
            async with (
                self._pool.connection(timeout=self._timeout) as connection,
                connection.cursor(row_factory=dict_row) as cursor,
            ):
                await cursor.execute(query, params)
                return await cursor.fetchall()
        except WRITE_FAILURES as exc:
            raise DecisionLogUnavailable(f"the decision log cannot be read: {exc}") from None

    async def _newest(self, decision_id: str, tenant: str | None, kind: str) -> list[_Row]:
        where = DecisionFilter(tenant=tenant, kind=kind)
        clauses, params = where.where()
        clauses.append(sql.SQL("id = %s"))
        query = sql.SQL("{}{} ORDER BY seq DESC LIMIT 1").format(_SELECT, _where(clauses))
        return await self._fetch(query, [*params, decision_id])

    async def get(
        self, decision_id: str, tenant: str | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]] | None:
        """The newest decision under `decision_id` (within `tenant` unless None = admin), with its
        appeals and reviews; None if there is none."""
        rows = await self._newest(decision_id, tenant, "decision")
        if not rows:
            # An appeal's own id shows the appeal (its history is the original's).
            rows = await self._newest(decision_id, tenant, "appeal")
            return (_public(rows[0]), [], []) if rows else None
        decision = rows[0]
        owner = decision["tenant"]
        appeals = await self._fetch(
            sql.SQL("{} WHERE appeal_of = %s AND tenant = %s ORDER BY seq").format(_SELECT),
            [decision_id, owner],
        )
        reviews = await self._fetch(
            sql.SQL(
                "SELECT decision_id, created_at, reviewer_key_id, outcome, verdict, note "
                "FROM reviews WHERE decision_id = %s AND tenant = %s ORDER BY seq"
            ),
            [decision_id, owner],
        )
        return _public(decision), [_public(row) for row in appeals], reviews

    async def page(
        self, where: DecisionFilter, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Decisions newest first, `limit` at a time; the cursor of the next page or None."""
        clauses, params = where.where()
        if cursor is not None:
            clauses.append(sql.SQL("seq < %s"))
            params.append(decode_cursor(cursor))
        condition = _where(clauses)
        query = sql.SQL("{}{} ORDER BY seq DESC LIMIT %s").format(_SELECT, condition)
        rows = await self._fetch(query, [*params, limit + 1])
        next_cursor = encode_cursor(rows[limit - 1]["seq"]) if len(rows) > limit else None
        return [_public(row) for row in rows[:limit]], next_cursor

    async def iterate(self, where: DecisionFilter) -> AsyncIterator[dict[str, Any]]:
        """Every matching decision, oldest first, streamed with a server-side cursor (export)."""
        clauses, params = where.where()
        condition = _where(clauses)
        query = sql.SQL("{}{} ORDER BY seq").format(_SELECT, condition)
        async with (
            self._pool.connection(timeout=self._timeout) as connection,
            connection.cursor(name="rsafe_export", row_factory=dict_row) as cursor,
        ):
            await cursor.execute(query, params)
            async for row in cursor:
                yield _public(row)

    async def add_review(
        self,
        decision_id: str,
        tenant: str,
        reviewer_key_id: str | None,
        outcome: str,
        verdict: str | None,
        note: str | None,
    ) -> dict[str, Any]:
        created_at = now()
        try:
            async with self._pool.connection(timeout=self._timeout) as connection:
                await connection.execute(
                    "INSERT INTO reviews (decision_id, tenant, created_at, reviewer_key_id, "
                    "outcome, verdict, note) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [decision_id, tenant, created_at, reviewer_key_id, outcome, verdict, note],
                )
        except WRITE_FAILURES as exc:
            raise DecisionLogUnavailable(f"the decision log cannot write: {exc}") from None
        return {
            "decision_id": decision_id,
            "created_at": created_at,
            "reviewer_key_id": reviewer_key_id,
            "outcome": outcome,
            "verdict": verdict,
            "note": note,
        }
