"""Expected refusals are no errors in the log, and no value of the server's error detail shows
in a log line, a query event or an error unless ``SHARED_DB_LOG_PARAMS`` is on."""

from __future__ import annotations

import logging
import traceback
from decimal import Decimal

import psycopg
import pytest

from shared_db.client import Database
from shared_db.errors import DuplicateError, ForeignKeyError, ValidationError
from shared_db.observe import QueryLogSettings
from shared_db.sql import QueryEvent
from tests.conftest import Stores

HASH = "$2b$04$JnfTEVhhG5yzPho/1c/sjeo99NUPRaCHqJpkkSyGtFCKdgEL.c5Eq"
OWNER = "secret.owner@example.com"
CHECKED = "checked.secret@example.com"


@pytest.mark.parametrize("log_params", [False, True], ids=["default", "log_params"])
async def test_refusals_carry_no_values(stores: Stores, caplog: pytest.LogCaptureFixture,
                                        log_params: bool) -> None:
    caplog.set_level(logging.DEBUG, "shared_db.query")
    events: list[QueryEvent] = []
    refused: list[BaseException] = []
    with psycopg.connect(stores.url("auth"), autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD CONSTRAINT users_name_allowed "
                     "CHECK (name <> 'forbidden')")
    try:
        async with Database(stores.settings(), log=QueryLogSettings(
                log_params=log_params)) as db:
            db.hooks.listeners.append(events.append)
            user = await db.users.create(email=OWNER, password_hash=HASH, name="O",
                                         role="CUSTOMER")
            await db.payments.create(user.id, Decimal("3.00"), type="payment")
            for kind, call in (
                    (DuplicateError, db.users.create(email=OWNER, password_hash=HASH,
                                                     name="Again", role="VENDOR")),
                    (ForeignKeyError, db.users.delete(user.id)),
                    (ValidationError, db.users.create(email=CHECKED, password_hash=HASH,
                                                      name="forbidden", role="ADMIN"))):
                with pytest.raises(kind) as caught:
                    await call
                refused.append(caught.value)
    finally:
        with psycopg.connect(stores.url("auth"), autocommit=True) as conn:
            conn.execute("ALTER TABLE users DROP CONSTRAINT users_name_allowed")
    values = (OWNER, CHECKED, str(user.id), HASH)
    # A service's error log prints the whole chain; the driver's DETAIL must not be in it.
    errors_text = [text for e in refused for text in (
        str(e), repr(e), *map(str, e.args), "".join(traceback.format_exception(e)))]
    logged = [record.getMessage() for record in caplog.records]
    events_text = [e.error for e in events if e.error is not None]
    assert not [t for t in errors_text if any(v in t for v in values)]  # never, either way
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], logged
    assert "users_email_key" in str(refused[0])
    assert refused[0].driver_error == "UniqueViolation"
    if stores.topology != "per-service":  # there the package itself refuses the delete
        assert any("query refused" in line for line in logged)
        assert any("payments_user_id_fkey" in t for t in events_text)
    leaked = [t for t in [*logged, *events_text] if any(v in t for v in values)]
    if log_params:  # the detail is shown, as the parameters are
        assert any("DETAIL:" in t and any(v in t for v in values) for t in events_text)
    else:
        assert not leaked, leaked
