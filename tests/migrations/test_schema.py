"""The migrated database is the guide's schema, table for table."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.catalog import snapshot
from tests.conftest import DbFixture
from tests.migrations import expected_schema as guide


@pytest.fixture
def catalog(migrated_db: DbFixture) -> dict:
    return snapshot(migrated_db.url, version_tables=True)


def _schema_tables(catalog: dict) -> dict:
    return {
        name: columns for name, columns in catalog["tables"].items()
        if not name.startswith("alembic_version_") and name not in catalog["views"]
    }


def test_tables_and_columns_match_the_guide(catalog: dict) -> None:
    assert _schema_tables(catalog) == guide.COLUMNS


def test_one_version_table_per_chain(catalog: dict) -> None:
    versions = {name for name in catalog["tables"] if name.startswith("alembic_version_")}
    assert versions == {f"alembic_version_{c}" for c in
                        ("auth", "payments", "admin", "profile", "links")}


def test_primary_and_unique_keys(catalog: dict) -> None:
    constraints = {k: v for k, v in catalog["constraints"].items()
                   if not k[0].startswith("alembic_version_")}
    keys = {k: v for k, v in constraints.items() if v.startswith("PRIMARY KEY")}
    assert keys == {(t, f"{t}_pkey"): f"PRIMARY KEY ({c})" for t, c in guide.PRIMARY_KEYS.items()}
    uniques = {k: v for k, v in constraints.items() if v.startswith("UNIQUE")}
    assert uniques == {k: f"UNIQUE ({col})" for k, col in guide.UNIQUE.items()}


def test_secondary_indexes(catalog: dict) -> None:
    found: dict[str, dict[str, str]] = {table: {} for table in guide.COLUMNS}
    for (table, name), definition in catalog["indexes"].items():
        if name.endswith(("_pkey", "_key")) or table.startswith("alembic_version_"):
            continue
        assert " USING btree " in definition, definition
        found[table][name] = re.search(r"\((.*)\)$", definition).group(1)
    assert found == guide.INDEXES


def test_foreign_keys_and_referential_actions(catalog: dict) -> None:
    fks = {k: v for k, v in catalog["constraints"].items() if v.startswith("FOREIGN KEY")}
    expected = {
        key: f"FOREIGN KEY ({column}) REFERENCES {target} {actions}"
        for key, (column, target, actions) in guide.FOREIGN_KEYS.items()
    }
    assert fks == expected


def test_enum_types_and_label_order(catalog: dict) -> None:
    assert catalog["enums"] == guide.ENUMS


def test_payment_reports_view(migrated_db: DbFixture, catalog: dict) -> None:
    assert set(catalog["views"]) == {"payment_reports"}
    with psycopg.connect(migrated_db.url) as conn:
        cursor = conn.execute("SELECT * FROM payment_reports LIMIT 0")
        assert [c.name for c in cursor.description] == guide.VIEW_COLUMNS


def test_updated_at_triggers(catalog: dict) -> None:
    tables = {table for (table, _name) in catalog["triggers"]}
    assert tables == guide.UPDATED_AT_TABLES
