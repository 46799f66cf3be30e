"""Alembic environment shared by every chain; the work is in ``shared_db.ops.alembic_env``."""

from shared_db.ops.alembic_env import run

run()
