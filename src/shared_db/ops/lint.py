"""``migrate lint``: each migration's offline SQL through the lint rules, and what its file
acknowledges.

A migration acknowledges a rule with a module-level mapping from rule id to the written reason
it is safe there::

    lint_acknowledged = {"constraint-not-valid": "runs before any service writes a row"}

An acknowledged finding is still reported, with its reason, but neither fails ``migrate lint``
nor stops ``deploy``. A rule of ``ERRORS`` (a transaction statement of the migration's own)
cannot be acknowledged, and ``deploy`` refuses it on any database. Rules are checked chain by
chain in history order, so a ``SET NOT NULL`` is accepted when an earlier migration of the
chain validated ``CHECK (col IS NOT NULL)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from alembic.script import ScriptDirectory
from pglast.parser import ParseError
from sqlalchemy import Connection, exists, select, table, text

from shared_db.errors import MigrationError, UnsafeMigrationError
from shared_db.ops.chains import CHAINS
from shared_db.ops.history import Step, alembic_config, all_steps
from shared_db.ops.lint_rules import ERRORS, RULES, ChainState, Finding, classify
from shared_db.ops.loading import describe, migration_code
from shared_db.ops.offline import step_sql

ACKNOWLEDGE = "lint_acknowledged"
RESOLVE_TABLE = text(
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.oid = to_regclass(CASE WHEN :schema = '' THEN quote_ident(:rel) "
    "ELSE quote_ident(:schema) || '.' || quote_ident(:rel) END)")
TABLES_OF_TYPE = text(
    "SELECT DISTINCT n.nspname, c.relname FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE a.atttypid = to_regtype(quote_ident(:type)) AND NOT a.attisdropped "
    "AND c.relkind IN ('r', 'p')")


@dataclass
class StepLint:
    """What the lint found in one migration."""

    step: Step
    findings: list[Finding] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)
    non_transactional: bool = False
    concurrent_indexes: list[str] = field(default_factory=list)

    @property
    def open(self) -> list[Finding]:
        """Findings whose rule the migration does not acknowledge."""
        return [f for f in self.findings if f.rule not in self.acknowledged]


def acknowledgements(script: ScriptDirectory, step: Step) -> dict[str, str]:
    """The file's ``lint_acknowledged``, checked: known rule ids, each with a reason.

    Raises:
        MigrationError: the mapping is malformed, names an unknown rule, or gives no reason.
    """
    where = f"{step.label}: {ACKNOWLEDGE}"

    def failed(exc: BaseException) -> MigrationError:
        return MigrationError(f"{where}: cannot be read: {describe(exc)}")

    with migration_code(Path(script.dir), failed):
        revision = script.get_revision(step.revision)
    raw = getattr(revision.module, ACKNOWLEDGE, {}) if revision is not None else {}
    if not isinstance(raw, dict):
        raise MigrationError(f"{where} must be a dict of rule id to reason")
    for rule, reason in raw.items():
        if rule not in RULES:
            raise MigrationError(f"{where} names unknown rule {rule!r}; rules: "
                                 + ", ".join(RULES))
        if rule in ERRORS:
            raise MigrationError(f"{where} names {rule!r}, which cannot be acknowledged: "
                                 f"{RULES[rule].recipe}")
        if not isinstance(reason, str) or not reason.strip():
            raise MigrationError(f"{where}[{rule!r}] must give the reason it is safe")
    return dict(raw)


def lint_steps(migrations_dir: Path, chains: tuple[str, ...],
               only: set[Step] | None = None) -> list[StepLint]:
    """Every migration of ``chains`` (or those in ``only``), in global order, with its findings.

    The others are still read in order for what they leave (a validated check); one of them
    that cannot be rendered or parsed is passed over: it has already run.

    Raises:
        MigrationError: a migration cannot be rendered or parsed, or acknowledges badly.
    """
    states = {chain: ChainState() for chain in chains}
    scripts = {chain: ScriptDirectory.from_config(alembic_config(migrations_dir, chain))
               for chain in chains}
    results = []
    for step in all_steps(migrations_dir, chains):
        wanted = only is None or step in only
        try:
            parsed = classify(step_sql(migrations_dir, step), states[step.chain])
        except ParseError as exc:
            if wanted:
                raise MigrationError(f"{step.label}: its SQL does not parse: {exc}") from None
            continue
        except MigrationError:
            if wanted:
                raise
            continue
        if wanted:
            found = [replace(f, migration=step.label) for f in parsed.findings]
            results.append(StepLint(step, found,
                                    acknowledgements(scripts[step.chain], step),
                                    parsed.non_transactional, parsed.concurrent_indexes))
    return results


def lint_all(migrations_dir: Path) -> list[StepLint]:
    """Every migration file of every chain (``links`` included), in global order."""
    return lint_steps(migrations_dir, CHAINS)


def _tables(conn: Connection, finding: Finding) -> list[tuple[str, str]]:
    if finding.table is None and finding.type_name is None:
        return []
    if finding.table is None:
        name = (finding.type_name or "").rpartition(".")[2]
        return [(n, r) for n, r in conn.execute(TABLES_OF_TYPE, {"type": name})]
    schema, _, rel = finding.table.rpartition(".")
    row = conn.execute(RESOLVE_TABLE, {"schema": schema, "rel": rel}).first()
    return [] if row is None else [(row[0], row[1])]


def tables_with_rows(conn: Connection, finding: Finding) -> list[str]:
    """The existing tables the finding acts on that hold at least one row.

    Raises:
        UnsafeMigrationError: the finding is refused whatever the tables hold (``ERRORS``).
    """
    if finding.rule in ERRORS:
        raise _refusal(finding)
    return [f"{schema}.{rel}" for schema, rel in _tables(conn, finding)
            if conn.execute(select(exists().select_from(table(rel, schema=schema)))).scalar()]


def _refusal(finding: Finding) -> UnsafeMigrationError:
    rule = finding.details
    return UnsafeMigrationError(
        f"refusing {finding.migration or 'a migration'}: [{rule.id}] {finding.statement!r} "
        f"{rule.problem}. Instead: {rule.recipe}. This rule cannot be acknowledged; nothing "
        "was applied")


def refuse_errors(lint: StepLint) -> None:
    """Raise if ``lint`` has a finding refused on any database (``ERRORS``).

    Raises:
        UnsafeMigrationError: names the migration, the statement and what to do instead.
    """
    for finding in lint.findings:
        if finding.rule in ERRORS:
            raise _refusal(finding)


def refuse_unsafe(conn: Connection, lint: StepLint) -> None:
    """Raise unless every open finding of ``lint`` acts on tables without rows.

    Raises:
        UnsafeMigrationError: names the statement, the table, the lock and the safe recipe.
    """
    refuse_errors(lint)
    for finding in lint.open:
        full = tables_with_rows(conn, finding)
        if full:
            rule = finding.details
            raise UnsafeMigrationError(
                f"refusing {lint.step.label}: [{rule.id}] {finding.statement!r} on "
                f"{', '.join(full)}, which holds rows: takes {finding.lock_taken} and "
                f"{rule.problem}. "
                f"Safe recipe: {rule.recipe}. If it is safe here, add {ACKNOWLEDGE} = "
                f"{{{rule.id!r}: 'why'}} to the migration file. Nothing of this migration was "
                "applied")


def lint_down(migrations_dir: Path, step: Step) -> StepLint:
    """How ``step``'s downgrade runs (inside a transaction or not); rules are not applied.

    A downgrade that cannot be rendered offline runs in a transaction, as every step used to:
    rolling back is what one does when things went wrong, so it is never refused for this.
    """
    try:
        parsed = classify(step_sql(migrations_dir, step, up=False))
    except (MigrationError, ParseError):
        return StepLint(step)
    return StepLint(step, non_transactional=parsed.non_transactional)
