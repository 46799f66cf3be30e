"""The safety lint's rules: what a migration's SQL locks and breaks, read from its parse tree.

Statements are parsed with pglast (libpg_query, PostgreSQL's own parser), so a rule matches the
statement PostgreSQL will run, whatever its spelling. A statement on a table created earlier in
the same migration is never flagged: the table is new, so nothing reads it and it holds no rows.
Whether a flagged table holds rows is for ``deploy`` to find out on the database.

The SQL is Alembic's offline rendering, which has Alembic's own ``BEGIN`` and ``COMMIT`` around
the migration and around each autocommit block: those two words alone, strictly in turn. Any
other transaction statement is the migration's own (``transaction-control``). A hand-written
``COMMIT`` ... ``BEGIN`` pair cannot be told from an autocommit block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pglast
from pglast import ast, enums

from shared_db.ops.lint_catalog import ERRORS as ERRORS
from shared_db.ops.lint_catalog import RULES as RULES
from shared_db.ops.lint_catalog import TRANSACTION_CONTROL
from shared_db.ops.lint_catalog import Finding as Finding
from shared_db.ops.lint_catalog import Rule as Rule

AT = enums.AlterTableType
CT = enums.ConstrType
OBJ = enums.ObjectType
VOLATILE = frozenset({"random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
                      "uuid_generate_v4", "uuidv4", "uuidv7", "clock_timestamp", "timeofday",
                      "nextval", "random_normal"})
SERIAL = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
FK_LOCK = "SHARE ROW EXCLUSIVE on the table and the one it references"


@dataclass
class ChainState:
    """What earlier migrations of a chain left that a rule depends on."""

    pending_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    """(table, constraint) -> column, for ``CHECK (col IS NOT NULL) NOT VALID``."""
    not_null_proven: set[tuple[str, str]] = field(default_factory=set)
    """(table, column) with a validated ``CHECK (col IS NOT NULL)``."""


@dataclass
class Parsed:
    findings: list[Finding] = field(default_factory=list)
    non_transactional: bool = False
    """Some statement runs outside a transaction (Alembic's ``autocommit_block``)."""
    concurrent_indexes: list[str] = field(default_factory=list)


def _name(rv: ast.RangeVar) -> str:
    return f"{rv.schemaname}.{rv.relname}" if rv.schemaname else str(rv.relname)


def _type_name(names: tuple[ast.String, ...] | None) -> str:
    return ".".join(str(n.sval) for n in names or ())


def _statements(sql: str) -> Iterator[tuple[ast.Node, str]]:
    for raw in pglast.parse_sql(sql):
        if raw.stmt is None:
            continue
        start = raw.stmt_location or 0
        text = sql[start:start + raw.stmt_len] if raw.stmt_len else sql[start:]
        yield raw.stmt, " ".join(text.split())


def classify(sql: str, state: ChainState | None = None) -> Parsed:
    """Findings, and how the SQL runs, for one migration's offline SQL.

    Raises:
        pglast.parser.ParseError: the SQL does not parse.
    """
    state = state or ChainState()
    out = Parsed()
    created: set[str] = set()
    recreated_types = {_type_name(s.typeName) for s, _ in _statements(sql)
                       if isinstance(s, ast.CreateEnumStmt)}
    in_transaction = committed = False
    for stmt, text in _statements(sql):
        if isinstance(stmt, ast.TransactionStmt):
            if text == ("COMMIT" if in_transaction else "BEGIN"):  # Alembic's own
                in_transaction = not in_transaction
                # A BEGIN after a COMMIT splits the migration's transaction, with or without a
                # statement between: what ran before it is committed for good, and the SET
                # LOCAL lock_timeout of a transactional run ended with it.
                out.non_transactional |= in_transaction and committed
                committed = committed or not in_transaction
            else:
                out.findings.append(Finding(TRANSACTION_CONTROL, text))
            continue
        out.non_transactional |= not in_transaction
        if isinstance(stmt, ast.CreateStmt) and stmt.relation is not None:
            created.add(_name(stmt.relation))
        elif isinstance(stmt, ast.IndexStmt) and stmt.relation is not None:
            table = _name(stmt.relation)
            if stmt.concurrent and stmt.idxname:
                out.concurrent_indexes.append(str(stmt.idxname))
            elif table not in created:
                out.findings.append(Finding("create-index", text, table))
        elif isinstance(stmt, ast.AlterTableStmt) and stmt.relation is not None:
            table = _name(stmt.relation)
            if table not in created and not table.startswith("alembic_version"):
                out.findings += _alter_table(stmt, table, text, state)
        else:
            out.findings += _other(stmt, text, created, recreated_types)
    return out


def _alter_table(stmt: ast.AlterTableStmt, table: str, text: str,
                 state: ChainState) -> list[Finding]:
    found: list[str] = []
    for cmd in stmt.cmds or ():
        if cmd.subtype == AT.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            found += _add_column(cmd.def_)
        elif cmd.subtype == AT.AT_AlterColumnType:
            found.append("column-type-change")
        elif cmd.subtype == AT.AT_SetNotNull:
            if (table, str(cmd.name)) not in state.not_null_proven:
                found.append("set-not-null")
        elif cmd.subtype == AT.AT_DropColumn:
            found.append("drop-column")
        elif cmd.subtype == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            found += _add_constraint(cmd.def_, table, state)
        elif cmd.subtype == AT.AT_ValidateConstraint:
            column = state.pending_checks.pop((table, str(cmd.name)), None)
            if column:
                state.not_null_proven.add((table, column))
    lock = FK_LOCK if any(isinstance(c.def_, ast.Constraint) and c.def_.contype == CT.CONSTR_FOREIGN
                          for c in stmt.cmds or ()) else ""
    return [Finding(rule, text, table, lock=lock if rule == "constraint-not-valid" else "")
            for rule in dict.fromkeys(found)]


def _add_column(col: ast.ColumnDef) -> list[str]:
    constraints = col.constraints or ()
    kinds = {c.contype for c in constraints}
    defaults = [c.raw_expr for c in constraints if c.contype == CT.CONSTR_DEFAULT]
    type_name = _type_name(col.typeName.names if col.typeName else None).split(".")[-1]
    # Serial, identity and stored generated columns compute a value per existing row.
    generated = type_name in SERIAL or bool(kinds & {CT.CONSTR_IDENTITY, CT.CONSTR_GENERATED})
    found = []
    if generated or any(_volatile(d) for d in defaults):
        found.append("volatile-default")
    if CT.CONSTR_NOTNULL in kinds and not defaults and not generated:
        found.append("add-column-not-null")
    return found


def _volatile(expr: ast.Node | None) -> bool:
    if isinstance(expr, ast.FuncCall):
        names = expr.funcname or ()
        if names and str(getattr(names[-1], "sval", "")) in VOLATILE:
            return True
        return any(_volatile(a) for a in expr.args or ())
    if isinstance(expr, ast.TypeCast):
        return _volatile(expr.arg)
    return False


def _add_constraint(con: ast.Constraint, table: str, state: ChainState) -> list[str]:
    if con.contype in (CT.CONSTR_UNIQUE, CT.CONSTR_PRIMARY) and not con.indexname:
        return ["unique-constraint"]
    if con.contype not in (CT.CONSTR_FOREIGN, CT.CONSTR_CHECK):
        return []
    column = _not_null_column(con.raw_expr) if con.contype == CT.CONSTR_CHECK else None
    if con.skip_validation:
        if column and con.conname:
            state.pending_checks[(table, str(con.conname))] = column
        return []
    if column:
        state.not_null_proven.add((table, column))
    return ["constraint-not-valid"]


def _not_null_column(expr: ast.Node | None) -> str | None:
    if (isinstance(expr, ast.NullTest) and expr.nulltesttype == enums.NullTestType.IS_NOT_NULL
            and isinstance(expr.arg, ast.ColumnRef) and len(expr.arg.fields or ()) == 1):
        return str(getattr((expr.arg.fields or ())[0], "sval", ""))
    return None


def _other(stmt: ast.Node, text: str, created: set[str],
           recreated_types: set[str]) -> list[Finding]:
    if isinstance(stmt, ast.DropStmt) and stmt.removeType == OBJ.OBJECT_TABLE:
        names = [".".join(str(p.sval) for p in obj) for obj in stmt.objects or ()]
        return [Finding("drop-table", text, n) for n in names if n not in created]
    if isinstance(stmt, ast.AlterEnumStmt) and stmt.oldVal:
        return [Finding("enum-value-renamed", text, type_name=_type_name(stmt.typeName))]
    if not isinstance(stmt, ast.RenameStmt):
        return []
    if stmt.renameType == OBJ.OBJECT_TYPE:
        old = _type_name(stmt.object) if isinstance(stmt.object, tuple) else ""
        rule = "enum-value-removed" if old in recreated_types else "rename"
        return [Finding(rule, text, type_name=old)]
    if stmt.renameType in (OBJ.OBJECT_TABLE, OBJ.OBJECT_COLUMN) and stmt.relation is not None:
        table = _name(stmt.relation)
        return [] if table in created else [Finding("rename", text, table)]
    return []
