"""Benchmarks: shared-db against raw sync and async psycopg, raw asyncpg and an idiomatic
SQLAlchemy ORM.

Run ``python -m bench [--quick] [--json FILE] [--plot DIR]``. See ``bench/README.md``.
"""
