"""No SQL in the package is built by string formatting: values travel as parameters (or as psql
variables), identifiers through psycopg's ``sql.Identifier`` or SQLAlchemy constructs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import shared_db

SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|SET|COPY|GRANT|"
                       r"TRUNCATE|WHERE|FROM|VALUES)\b")
PACKAGE = Path(shared_db.__file__).parent


def _literal(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal(v) for v in node.values)
    return ""


def formatted_sql() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            kind = None
            if isinstance(node, ast.JoinedStr) and any(
                    isinstance(v, ast.FormattedValue) for v in node.values):
                kind = "f-string"
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
                node, kind = node.left, "% formatting"
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "format"):
                node, kind = node.func.value, ".format()"
            if kind and SQL_WORDS.search(_literal(node)):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {kind}")
    return found


def test_no_sql_is_built_by_string_formatting() -> None:
    assert formatted_sql() == []


def test_the_check_itself_finds_formatted_sql(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "shared_db"
    bad.mkdir()
    (bad / "__init__.py").write_text('table = "users"\nquery = f"SELECT * FROM {table}"\n'
                                     'other = "DELETE FROM %s" % table\n')
    monkeypatch.setattr(shared_db, "__file__", str(bad / "__init__.py"))
    monkeypatch.setattr("tests.test_sql_hygiene.PACKAGE", bad)
    assert formatted_sql() == ["__init__.py:2: f-string", "__init__.py:3: % formatting"]
