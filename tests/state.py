"""An independent fingerprint of every row, to prove a failed call wrote nothing."""

from __future__ import annotations

import psycopg

TABLES = ("users", "refresh_tokens", "devices", "sessions", "payments", "payment_transactions",
          "audit_logs", "system_config", "user_profiles", "auth_idempotency_keys",
          "admin_idempotency_keys", "profile_idempotency_keys", "payments_idempotency_keys")


def digest(url: str) -> dict[str, tuple[int, str | None]]:
    """Row count and an md5 of all rows, per table (of those this database holds)."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")  # the same rows read the same on any server
        present = {name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        return {
            table: conn.execute(
                f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
            ).fetchone()
            for table in TABLES if table in present
        }
