"""Private copies of the migration chains with extra migrations written by a test."""

from __future__ import annotations

import shutil
from pathlib import Path

from shared_db.config import PACKAGE_MIGRATIONS

HEAD = "20261201000000"  # every service chain's newest migration in the package
NEXT = "20261202000000"


def migration(upgrade: str, downgrade: str = "pass", *, revision: str = NEXT,
              down_revision: str = HEAD, extra: str = "") -> str:
    """The text of a migration file whose bodies are the given Python statements."""
    indent = "\n    ".join
    return ('"""extra migration for a test."""\n\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {revision!r}\ndown_revision = {down_revision!r}\n"
            f"branch_labels = None\ndepends_on = None\n{extra}\n\n"
            f"def upgrade() -> None:\n    {indent(upgrade.splitlines())}\n\n\n"
            f"def downgrade() -> None:\n    {indent(downgrade.splitlines())}\n")


def copy_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """The package's chains copied under ``tmp_path``, plus ``files`` (``chain/<rev>_<name>``)."""
    folder = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in files.items():
        (folder / "versions" / f"{name}.py").write_text(text)
    return folder
