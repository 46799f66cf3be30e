"""The safety lint's rules and findings: what each rule is about, the lock it takes, the harm
and the safe recipe (``lint_rules`` finds them in the SQL).

Most rules are about what a statement does to a table holding rows, so ``deploy`` refuses them
only there and a migration may acknowledge them. A rule in ``ERRORS`` is refused on any database
and cannot be acknowledged: the statement breaks how deploy runs migrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LATER = "in a later migration"
TRANSACTION_CONTROL = "transaction-control"


@dataclass(frozen=True)
class Rule:
    id: str
    lock: str
    problem: str
    recipe: str


RULES = {rule.id: rule for rule in (
    Rule("column-type-change", "ACCESS EXCLUSIVE",
         "rewrites the table and its indexes; every read and write waits until it is done",
         "add a column of the new type, backfill it in batches, switch the code to it, then drop "
         f"the old column {LATER}"),
    Rule("volatile-default", "ACCESS EXCLUSIVE",
         "a volatile default (or a serial type) is computed row by row: the table is rewritten",
         "add the column without a default, set the default, then backfill existing rows in "
         "batches"),
    Rule("add-column-not-null", "ACCESS EXCLUSIVE",
         "fails on a table with rows: existing rows have no value for the column",
         "add it with a constant DEFAULT (no rewrite since PostgreSQL 11), or add it nullable, "
         "backfill, then follow the set-not-null recipe"),
    Rule("set-not-null", "ACCESS EXCLUSIVE",
         "scans every row under the lock to prove there is no NULL",
         "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c in a "
         "later migration; then SET NOT NULL (the validated check spares the scan) and drop c"),
    Rule("create-index", "SHARE",
         "blocks every INSERT, UPDATE and DELETE on the table until the index is built",
         "CREATE INDEX CONCURRENTLY in a migration of its own, inside "
         "op.get_context().autocommit_block(), with if_not_exists=True"),
    Rule("constraint-not-valid", "ACCESS EXCLUSIVE",
         "checks every existing row while holding the lock",
         "add it NOT VALID (postgresql_not_valid=True), then VALIDATE CONSTRAINT in a later "
         "migration (SHARE UPDATE EXCLUSIVE: reads and writes go on)"),
    Rule("unique-constraint", "ACCESS EXCLUSIVE",
         "builds a unique index while holding the lock",
         "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX"),
    Rule("enum-value-renamed", "ACCESS EXCLUSIVE",
         "the running services still send the old label and fail",
         "add the new value, move rows to it, release code that no longer uses the old label, "
         f"then remove it {LATER}"),
    Rule("enum-value-removed", "ACCESS EXCLUSIVE",
         "the type is replaced: removed labels fail for the running services, columns are "
         "rewritten",
         "release code that no longer writes the label and move its rows first; replace the "
         "type only then"),
    Rule("drop-table", "ACCESS EXCLUSIVE",
         "the running version of the services still reads and writes it",
         f"release code that no longer uses the table, then drop it {LATER}"),
    Rule("drop-column", "ACCESS EXCLUSIVE",
         "the running version of the services still reads and writes it",
         f"release code that no longer uses the column, then drop it {LATER}"),
    Rule("rename", "ACCESS EXCLUSIVE",
         "the running version of the services still uses the old name",
         "expand and contract: add the new name, write both, backfill, switch the code, drop "
         f"the old one {LATER}"),
    Rule(TRANSACTION_CONTROL, "none",
         "ends or opens a transaction inside the migration, which deploy runs in a transaction "
         "of its own: what ran before it is committed, so a later failure leaves the migration "
         "half-applied and the version table at the one before it",
         "remove it; for a statement that cannot run in a transaction, wrap it in "
         "op.get_context().autocommit_block() in a migration of its own, re-runnable"),
)}


@dataclass(frozen=True)
class Finding:
    """One flagged statement: ``table`` (or ``type_name`` for an enum) is what it acts on."""

    rule: str
    statement: str
    table: str | None = None
    type_name: str | None = None
    lock: str = ""
    """The lock taken, when it depends on the statement (a foreign key's is weaker)."""
    migration: str = field(default="", compare=False)
    """The label of the migration it is in, once ``lint`` has placed it."""

    @property
    def details(self) -> Rule:
        return RULES[self.rule]

    @property
    def lock_taken(self) -> str:
        return self.lock or RULES[self.rule].lock


ERRORS = frozenset({TRANSACTION_CONTROL})
"""Rules refused whatever the database holds, never acknowledged."""

