"""``shared-db metrics --port P``, scraped over HTTP while it runs."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from shared_db.cli import main
from shared_db.client import Database
from shared_db.ops import monitoring
from tests.conftest import DbFixture
from tests.factories import make_user


async def test_serves_pools_and_the_servers_statements_by_method(migrated_db: DbFixture,
                                                                 ) -> None:
    async with Database(migrated_db.settings()) as db:
        await make_user(db, "scraped@example.com")
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        preloaded = "pg_stat_statements" in str(
            conn.execute("SHOW shared_preload_libraries").fetchone())
        if preloaded:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            # any client's comment that only starts like the package's names no method
            conn.execute("SELECT 1 /* shared_db:broken*/")
    process = subprocess.Popen([sys.executable, "-m", "shared_db", "metrics", "--port", "0"],
                               env=migrated_db.env(), stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Metrics: http://127.0.0.1:"), line
        with urllib.request.urlopen(line.split()[1], timeout=10) as answer:
            text = answer.read().decode()
    finally:
        process.terminate()
        process.wait(10)
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["shared_db_pool_size"].labels["database"] == migrated_db.connection.database
    if preloaded:
        calls = [s for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "shared_db_server_statement_calls_total"]
        assert any(s.labels["method"] == "users.create" and s.value >= 1 for s in calls)
        assert all(s.labels["method"] not in ("None", "") for s in calls)
        stats = monitoring.collect(migrated_db.target(), top=100)
        assert stats.top_methods and None not in {m.method for m in stats.top_methods}


def test_a_bad_port_is_refused_naming_it(capsys: object) -> None:
    assert main(["metrics", "--port", "70000"]) == 2
    assert main(["metrics"]) == 2
