"""The benchmark's data set, loaded with COPY: 10,000 users with profiles, 100,000 payments
(10 per user, spread over a year, every 7th sharing its timestamp with the one before), and
200,000 payment transactions."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from shared_db.passwords import hash_password

USERS = 10_000
PAYMENTS_PER_USER = 10
TRANSACTIONS_PER_PAYMENT = 2
ROLES = ("CUSTOMER",) * 8 + ("VENDOR", "ADMIN")


@dataclass(frozen=True)
class DataSet:
    user_ids: list[uuid.UUID]
    password_hash: str
    seed_seconds: float
    rows: int


def load(url: str, users: int = USERS) -> DataSet:
    """COPY the data set into the (migrated, empty) database at ``url``."""
    rng = random.Random(42)
    password_hash = hash_password("bench-password")
    user_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(users)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id, email, password_hash, name, role, email_verified) "
                      "FROM STDIN") as copy:
            for i, user_id in enumerate(user_ids):
                copy.write_row((user_id, f"user{i}@bench.test", password_hash, f"User {i}",
                                ROLES[i % len(ROLES)], True))
        with cur.copy("COPY user_profiles (user_id, bio, preferences) FROM STDIN") as copy:
            for user_id in user_ids:
                copy.write_row((user_id, "bench profile", '{"theme": "dark"}'))
        payment_ids = []
        with cur.copy("COPY payments (id, user_id, amount, currency, status, type, created_at) "
                      "FROM STDIN") as copy:
            moment = start
            for n in range(users * PAYMENTS_PER_USER):
                if n % 7:
                    moment = start + timedelta(seconds=rng.randrange(365 * 86_400))
                payment_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                payment_ids.append(payment_id)
                amount = f"{rng.randrange(100, 99_999) / 100:.2f}"
                copy.write_row((payment_id, user_ids[n % users], amount, "USD",
                                ("completed", "pending", "failed")[n % 3], "payment", moment))
        with cur.copy("COPY payment_transactions (payment_id, transaction_type, amount, status) "
                      "FROM STDIN") as copy:
            for payment_id in payment_ids:
                for kind in ("authorize", "capture")[:TRANSACTIONS_PER_PAYMENT]:
                    copy.write_row((payment_id, kind, "1.00", "ok"))
        rows = users * 2 + len(payment_ids) * (1 + TRANSACTIONS_PER_PAYMENT)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return DataSet(user_ids, password_hash, time.perf_counter() - started, rows)
