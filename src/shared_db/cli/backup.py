"""``shared-db backup`` and ``shared-db restore`` (guide 8), verified and all-or-nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared_db.cli.common import confirm, console, console_err, lazy, settings, targets
from shared_db.errors import BackupError, ConfigError

if TYPE_CHECKING:
    from shared_db.ops import backup as backups
    from shared_db.ops import restore as restores
    from shared_db.ops.targets import Target
else:
    backups = lazy("shared_db.ops.backup")
    restores = lazy("shared_db.ops.restore")


def _doc(result: backups.BackupResult) -> dict[str, Any]:
    return {"file": str(result.file), "manifest_file": str(result.manifest_file),
            "manifest": dataclasses.asdict(result.manifest), "verified": result.verified,
            "removed": [str(p) for p in result.removed]}


def backup(
    given: Annotated[str, typer.Option("--dir", help="Backup folder.")] = "backups",
    fmt: Annotated[str, typer.Option("--format", help="custom or sql.gz")] = "custom",
    verify: Annotated[bool, typer.Option("--verify", help="Restore into a scratch database "
                                         "and compare every table.")] = False,
    keep: Annotated[int | None, typer.Option("--keep", help="Keep only the newest N of the "
                                             "backups shared-db made in DIR.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Back up the database into DIR/backup_YYYYmmdd_HHMMSS.<ext> with a manifest."""
    if fmt not in backups.EXTENSIONS:
        raise ConfigError("--format", f"must be custom or sql.gz, got {fmt!r}")
    if keep is not None and keep < 1:
        raise ConfigError("--keep", f"must be at least 1, got {keep}")
    if not given.strip():
        # Path("") is the current directory: an unset variable in `--dir "$BACKUPS"` would
        # scatter backups wherever the pipeline happened to run.
        raise ConfigError("--dir", "must name a folder, got an empty value (give . to mean "
                          "the current directory)")
    folder = Path(given)
    try:  # before any connection, so a bad --dir is a usage error
        backups.make_folder(folder)
    except BackupError as exc:
        raise ConfigError("--dir", str(exc)) from None
    found = targets(settings())
    for target in found:  # before any dump, so no service is backed up and another refused
        backups.refuse_pooled(target)
    docs = []
    for target in found:
        where = folder if len(found) == 1 else folder / target.name
        with console_err.status("backing up") as status:
            result = backups.backup(target, where, fmt, status.update)  # type: ignore[arg-type]
            if verify:
                status.update("verifying: restoring into a scratch database")
                result = backups.verify(result, target.connection)
        if keep is not None:
            result = dataclasses.replace(result, removed=backups.prune(where, keep, result.file))
        docs.append(_doc(result))
        if not as_json:
            tables = result.manifest.tables
            console.print(f"Backed up {target.name} to {result.file} "
                          f"({result.manifest.bytes} bytes, {len(tables)} tables, "
                          f"{sum(t['rows'] for t in tables.values())} rows)"
                          + (", verified" if result.verified else "")
                          + (f"; removed {len(result.removed)} old backup(s)"
                             if result.removed else ""))
    if as_json:
        console.print_json(json.dumps(docs[0] if len(docs) == 1 else {"backups": docs}))


def restore(file: Annotated[Path, typer.Argument(help="A backup made by shared-db backup.")],
            force: Annotated[bool, typer.Option("--force", help="Replace a non-empty "
                                                "database.")] = False,
            service: Annotated[str | None, typer.Option(
                "--service", help="Per-service topology: the service whose database to "
                "restore into.")] = None) -> None:
    """Restore FILE into the database, all or nothing, checked against its manifest."""
    current = settings()
    target = _restore_target(targets(current), service)
    from shared_db.ops.targets import require_direct

    require_direct(target, "restore", "the dump sets session settings (search_path emptied, "
                   "row_security off)")
    if force:
        confirm(f"Replace everything in {target.connection.safe_url()} with {file.name}?", True)
    with console_err.status("restoring") as status:
        manifest = restores.restore(target.connection, file, force=force, progress=status.update,
                                    migrations_dir=current.migrations_dir, chains=target.chains)
    console.print(f"Restored {file} into {target.connection.safe_url()}: "
                  f"{len(manifest.tables)} tables match the manifest.")


def _restore_target(found: list[Target], service: str | None) -> Target:
    """The shared database, or in the per-service topology the one ``--service`` names."""
    if len(found) == 1:
        if service is not None:
            raise ConfigError("--service", "names a service's database only in the per-service "
                              "topology (SHARED_DB_TOPOLOGY=per-service); the shared topology "
                              "has one database: leave it out")
        return found[0]
    names = ", ".join(t.name for t in found)
    if service is None:
        raise ConfigError("--service", f"the per-service topology restores one service's "
                          f"database at a time: name it ({names})")
    for target in found:
        if target.name == service:
            return target
    raise ConfigError("--service", f"must be one of {names}, got {service!r}")
