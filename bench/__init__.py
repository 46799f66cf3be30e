"""Benchmarks: shared-db against raw psycopg, raw asyncpg and an idiomatic SQLAlchemy ORM.

Run ``python -m bench [--quick] [--json FILE] [--plot DIR]``. See ``bench/README.md``.
"""
