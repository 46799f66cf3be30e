"""The schema behaves as the guide says for writers that bypass the ORM (raw SQL)."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import errors

from tests.conftest import DbFixture


@pytest.fixture
def conn(migrated_db: DbFixture):
    with psycopg.connect(migrated_db.url, autocommit=True) as connection:
        yield connection


def _user(conn: psycopg.Connection, email: str = "u@example.com") -> str:
    return conn.execute("INSERT INTO users (email, password_hash, name, role) "
                        "VALUES (%s, 'h', 'U', 'CUSTOMER') RETURNING id", (email,)).fetchone()[0]


def test_database_defaults_fill_raw_inserts(conn: psycopg.Connection) -> None:
    user_id = _user(conn)
    row = conn.execute("SELECT email_verified, created_at IS NOT NULL, updated_at IS NOT NULL, "
                       "deleted_at FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row == (False, True, True, None)
    currency = conn.execute("INSERT INTO payments (user_id, amount, status, type) VALUES "
                            "(%s, 1, 'pending', 'payment') RETURNING currency", (user_id,))
    assert currency.fetchone() == ("USD",)


def test_updated_at_is_kept_by_the_database(conn: psycopg.Connection) -> None:
    user_id = _user(conn)
    before = conn.execute("SELECT updated_at FROM users WHERE id = %s", (user_id,)).fetchone()[0]
    time.sleep(0.01)
    conn.execute("UPDATE users SET name = 'Renamed' WHERE id = %s", (user_id,))
    after = conn.execute("SELECT updated_at FROM users WHERE id = %s", (user_id,)).fetchone()[0]
    assert after > before


def test_deleting_a_user_cascades_except_payments(conn: psycopg.Connection) -> None:
    user_id = _user(conn)
    conn.execute("INSERT INTO user_profiles (user_id) VALUES (%s)", (user_id,))
    conn.execute("INSERT INTO refresh_tokens (user_id, token, expires_at) "
                 "VALUES (%s, 't', now())", (user_id,))
    device = conn.execute("INSERT INTO devices (user_id, device_id) VALUES (%s, 'd') "
                          "RETURNING id", (user_id,)).fetchone()[0]
    conn.execute("INSERT INTO sessions (user_id, device_id, expires_at) VALUES (%s, %s, now())",
                 (user_id, device))
    payment = conn.execute("INSERT INTO payments (user_id, amount, status, type) VALUES "
                           "(%s, 5, 'pending', 'payment') RETURNING id", (user_id,)).fetchone()[0]
    # PostgreSQL 18 reports RESTRICT as restrict_violation, older servers as foreign_key_violation.
    with pytest.raises((errors.RestrictViolation, errors.ForeignKeyViolation),
                       match="payments_user_id_fkey"):
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
    conn.execute("DELETE FROM payments WHERE id = %s", (payment,))
    conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
    for table in ("user_profiles", "refresh_tokens", "devices", "sessions"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_payment_transactions_go_with_their_payment(conn: psycopg.Connection) -> None:
    user_id = _user(conn)
    payment = conn.execute("INSERT INTO payments (user_id, amount, status, type) VALUES "
                           "(%s, 5, 'pending', 'payment') RETURNING id", (user_id,)).fetchone()[0]
    conn.execute("INSERT INTO payment_transactions (payment_id, transaction_type, amount, status)"
                 " VALUES (%s, 'charge', 5, 'ok')", (payment,))
    conn.execute("DELETE FROM payments WHERE id = %s", (payment,))
    assert conn.execute("SELECT count(*) FROM payment_transactions").fetchone() == (0,)


def test_types_reject_what_the_guide_does_not_allow(conn: psycopg.Connection) -> None:
    user_id = _user(conn)
    with pytest.raises(errors.InvalidTextRepresentation):
        conn.execute("UPDATE users SET role = 'ROOT' WHERE id = %s", (user_id,))
    with pytest.raises(errors.NumericValueOutOfRange):
        conn.execute("INSERT INTO payments (user_id, amount, status, type) VALUES "
                     "(%s, 123456789.00, 'pending', 'payment')", (user_id,))
    with pytest.raises(errors.UniqueViolation, match="users_email_key"):
        _user(conn)


def test_payment_reports_view_aggregates(conn: psycopg.Connection) -> None:
    user_id = _user(conn)
    _user(conn, "idle@example.com")
    for amount in (10, 20):
        conn.execute("INSERT INTO payments (user_id, amount, status, type) VALUES "
                     "(%s, %s, 'completed', 'payment')", (user_id, amount))
    rows = conn.execute("SELECT email, role::text, total_payments, total_amount, avg_amount "
                        "FROM payment_reports ORDER BY email").fetchall()
    assert rows == [("idle@example.com", "CUSTOMER", 0, None, None),
                    ("u@example.com", "CUSTOMER", 2, 30, 15)]
