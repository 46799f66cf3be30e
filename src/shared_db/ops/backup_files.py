"""The names of backup files, and which of a folder's files are backups ``--keep`` may delete.

A backup is ``backup_YYYYmmdd_HHMMSS.dump`` or ``.sql.gz`` (the UTC second it started) with
``backup_YYYYmmdd_HHMMSS.manifest.json`` beside it. The manifest's name does not carry the
format, so one stem holds one backup: ``reserve`` claims the stem by creating its manifest file
exclusively, and a backup started in a second another one (of either format) already claimed
takes the next second. A claimed name is never written by two backups.

Retention (``prune``) touches only files whose name is exactly that pattern and whose manifest
beside them describes them; it orders them by the time in their name, and always keeps the
backup just written. Any other file (``backup_old.dump``, a file without its manifest, a
manifest of another file) is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared_db.errors import BackupError
from shared_db.ops.checksums import EXTENSIONS, Manifest, manifest_path

NAME = re.compile(r"backup_(\d{8}_\d{6})(\.dump|\.sql\.gz)")
ATTEMPTS = 5


@dataclass(frozen=True)
class Reserved:
    file: Path
    manifest_file: Path
    stamp: datetime


def reserve(folder: Path, extension: str) -> Reserved:
    """A backup name in ``folder`` no other backup has or can take, for ``extension``.

    Raises:
        BackupError: no second was free after ``ATTEMPTS`` tries, or the folder is not
            writable.
    """
    for _ in range(ATTEMPTS):
        stamp = datetime.now(UTC).replace(microsecond=0)
        stem = f"backup_{stamp:%Y%m%d_%H%M%S}"
        claim = folder / f"{stem}.manifest.json"
        taken = [folder / f"{stem}{ext}" for ext in EXTENSIONS.values()]
        if not any(p.exists() or p.with_name(p.name + ".partial").exists() for p in taken):
            try:
                os.close(os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                pass
            except OSError as exc:
                raise BackupError(f"cannot write in {folder}: {exc.strerror}") from None
            else:
                return Reserved(folder / f"{stem}{extension}", claim, stamp)
        time.sleep(1.0 - datetime.now(UTC).microsecond / 1e6 + 0.01)
    raise BackupError(f"no free backup name in {folder} after {ATTEMPTS} seconds: other "
                      "backups are being written there")


def release(reserved: Reserved) -> None:
    """Give the name back after a failed backup: its partial file and, while its claim is still
    empty (no manifest was written), the dump itself, which without a manifest is no backup and
    which ``prune`` would never delete, the manifest's partial file and the claim."""
    with contextlib.suppress(OSError):
        reserved.file.with_name(reserved.file.name + ".partial").unlink(missing_ok=True)
        if reserved.manifest_file.stat().st_size == 0:
            reserved.file.unlink(missing_ok=True)
            reserved.manifest_file.with_suffix(".partial").unlink(missing_ok=True)
            reserved.manifest_file.unlink()


def _stamp(name: str) -> datetime | None:
    found = NAME.fullmatch(name)
    if found is None:
        return None
    try:
        return datetime.strptime(found.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def ours(folder: Path) -> list[tuple[datetime, Path]]:
    """The backups in ``folder`` that shared-db made, oldest first: the exact name pattern, a
    regular file, and a manifest beside it that names it."""
    found = []
    for path in folder.iterdir():
        stamp = _stamp(path.name)
        if stamp is None or path.is_symlink() or not path.is_file():
            continue
        try:
            manifest = Manifest.read(manifest_path(path))
        except BackupError:
            continue
        if manifest.file == path.name and path.name.endswith(EXTENSIONS[manifest.format]):
            found.append((stamp, path))
    return sorted(found)


def prune(folder: Path, keep: int, written: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` of our backups (with their manifests), never
    ``written``; what was deleted."""
    if keep < 1:
        raise BackupError(f"--keep must be at least 1, got {keep}")
    backups = [path for _, path in ours(folder)]
    kept = [written] if written is not None and written in backups else []
    for path in reversed(backups):
        if len(kept) >= keep:
            break
        if path not in kept:
            kept.append(path)
    removed = [path for path in backups if path not in kept]
    for path in removed:
        path.unlink()
        manifest_path(path).unlink(missing_ok=True)
    return removed
