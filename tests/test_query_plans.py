"""The hot queries use the indexes the guide declares for them."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from shared_db.auth import sessions, tokens
from shared_db.payments.repository import listing
from shared_db.sql import Query
from tests.conftest import DbFixture


@pytest.fixture
def conn(migrated_db: DbFixture):
    with psycopg.connect(migrated_db.url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO users (email, password_hash, name, role) "
            "SELECT 'u' || k || '@example.com', 'h', 'U', 'CUSTOMER' FROM generate_series(1, 50) k")
        connection.execute(
            "INSERT INTO payments (user_id, amount, status, type) "
            "SELECT u.id, k, (ARRAY['pending','completed','failed'])[1 + k % 3]"
            "::\"PaymentStatus\", 'payment' FROM users u, generate_series(1, 40) k")
        connection.execute("ANALYZE")
        connection.execute("SET enable_seqscan = off")
        yield connection


def _plan(conn: psycopg.Connection, query: Query, params: dict) -> str:
    rows = conn.execute("EXPLAIN " + query.sql, params).fetchall()
    return "\n".join(r[0] for r in rows)


def test_user_payments_by_status_use_the_composite_index(conn: psycopg.Connection) -> None:
    plan = _plan(conn, listing(True, True, False, 21),
                 {"user_id": uuid.uuid4(), "status": "pending"})
    assert "payments_user_id_status_idx" in plan, plan


def test_expired_sessions_purge_uses_expires_at_index(conn: psycopg.Connection) -> None:
    assert "sessions_expires_at_idx" in _plan(conn, sessions.PURGE, {})


def test_token_lookup_uses_a_token_index(conn: psycopg.Connection) -> None:
    plan = _plan(conn, tokens.FIND, {"hash": "0" * 64})
    assert "refresh_tokens_token_key" in plan or "refresh_tokens_token_idx" in plan, plan
