"""What every chain's ``env.py`` runs: scoping autogenerate to the chain and using our connection.

The migration commands in ``ops`` always hand Alembic an open connection through
``config.attributes["connection"]`` (Alembic's connection-sharing recipe), so locking and
transactions stay in the caller's hands. Without one (offline ``--sql`` mode) it renders
PostgreSQL DDL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData

from shared_db.models import Base
from shared_db.ops.drift import chain_options


def run() -> None:
    config = context.config
    chain = config.get_main_option("chain")
    if not chain:
        raise RuntimeError("the Alembic config has no 'chain' option")
    metadata: MetaData = config.attributes.get("metadata") or Base.metadata
    options = chain_options(chain, metadata)
    connection = config.attributes.get("connection")
    if connection is None:
        context.configure(url="postgresql://", dialect_name="postgresql", literal_binds=True,
                          **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    context.configure(connection=connection, **options)
    # A no-op inside the caller's transaction; without one (a step with an autocommit_block),
    # Alembic's own transaction is what the block commits and reopens.
    with context.begin_transaction():
        context.run_migrations()
