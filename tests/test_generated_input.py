"""Generated hostile input to every public entry point, found by introspection.

The entry points are the public methods of every repository on ``Database`` (its cached
properties), ``Database``'s own public methods but ``open`` and ``close``, and the public
coroutine functions of the ``service`` modules that take a ``Source`` first: a method added
later is called here without editing this file. Each generated call gives one parameter a
hostile value (``tests/hostile.py``, chosen by the parameter's annotation and name) and every
other parameter a valid one. The call must then succeed with a result of its declared return
type, or raise a shared-db error: a ValidationError naming that parameter, or an answer about
the data (not found, duplicate, conflict, ...). A value of a kind that is never valid must be
refused by name. After any error, the fingerprint of every table is what it was.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import pkgutil
import secrets
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Union

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared_db
from shared_db import errors
from shared_db.auth.batch import NewUser
from shared_db.client import Database
from shared_db.enums import PaymentStatus, PaymentType, UserRole
from shared_db.repositories import Repositories
from shared_db.repository import Source
from shared_db.transaction import Transaction
from tests import hostile
from tests.conftest import Stores
from tests.state import TABLES

hostile.register_enums(UserRole, PaymentStatus, PaymentType)

CALLS = {"shared": 2500, "per-service": 2500, "pgbouncer": 700}
"""Generated calls per topology: 5,700 per run of the suite; CI runs it twice, so 5,000 on each
topology and 1,400 more through PgBouncer."""
LIFECYCLE = {"open", "close"}  # they would end the client the other calls use
ANSWERS = (errors.NotFoundError, errors.DuplicateError, errors.ConflictError,
           errors.InvalidTransitionError, errors.ForeignKeyError, errors.TokenReusedError,
           errors.QueryTimeoutError)
"""Errors about the data rather than the input: valid values may meet them."""
PROFILE_FIELDS = ("bio", "phone", "avatar_url", "address")


@dataclass(frozen=True)
class Entry:
    label: str
    call: Callable[..., Any]
    params: tuple[inspect.Parameter, ...]
    hints: dict[str, Any]


def _entry(label: str, call: Callable[..., Any], fn: Callable[..., Any], skip: int) -> Entry:
    original = inspect.unwrap(fn)
    params = tuple(inspect.signature(original).parameters.values())[skip:]
    return Entry(label, call, params, typing.get_type_hints(original, include_extras=True))


def entry_points(db: Database) -> list[Entry]:
    found: list[Entry] = []
    for name, attribute in vars(Repositories).items():
        if isinstance(attribute, functools.cached_property):
            repository = getattr(db, name)
            for method, fn in inspect.getmembers(type(repository), inspect.isfunction):
                if not method.startswith("_"):
                    found.append(_entry(f"db.{name}.{method}", getattr(repository, method),
                                        fn, 1))
    for method, fn in vars(Database).items():
        if inspect.isfunction(fn) and not method.startswith("_") and method not in LIFECYCLE:
            found.append(_entry(f"db.{method}", getattr(db, method), fn, 1))
    for module in pkgutil.walk_packages(shared_db.__path__, "shared_db."):
        if not module.name.endswith(".service"):
            continue
        for name, fn in vars(importlib.import_module(module.name)).items():
            if (not name.startswith("_") and inspect.iscoroutinefunction(fn)
                    and fn.__module__ == module.name):
                first = next(iter(inspect.signature(fn).parameters.values()), None)
                if first is not None and typing.get_type_hints(inspect.unwrap(fn)).get(
                        first.name) is Source:
                    found.append(_entry(f"{name}(db, ...)", functools.partial(fn, db), fn, 1))
    return found


@dataclass
class Rows:
    """Valid rows for the parameters that name existing ones."""

    user: uuid.UUID
    email: str
    payment: uuid.UUID
    device: uuid.UUID
    session: uuid.UUID
    serial: list[int] = field(default_factory=lambda: [0])

    def fresh(self, prefix: str) -> str:
        self.serial[0] += 1
        return f"{prefix}{self.serial[0]}"


async def _work(tx: Transaction) -> Any:
    return await tx.config.value("generated.flag")


MISSING = object()


def valid(rows: Rows, entry: Entry, param: inspect.Parameter) -> Any:
    """A valid value for ``param`` of ``entry`` (MISSING: leave the default)."""
    name, hint = param.name, entry.hints.get(param.name, Any)
    creates = "create" in entry.label
    by_name: dict[str, Callable[[], Any]] = {
        "user_id": lambda: rows.user, "user_ids": lambda: [rows.user, uuid.uuid4()],
        "payment_id": lambda: rows.payment, "device": lambda: rows.device,
        "session_id": lambda: rows.session, "keep": lambda: rows.session,
        "email": lambda: f"{rows.fresh('new')}@example.com" if creates else rows.email,
        "name": lambda: "Name", "role": lambda: "CUSTOMER", "to": lambda: "initiated",
        "password": lambda: "password1", "amount": lambda: Decimal("1.00"),
        "type": lambda: "payment", "token": lambda: secrets.token_urlsafe(32),
        "device_id": lambda: rows.fresh("device-"), "key": lambda: "generated.flag",
        "value": lambda: {"on": True}, "action": lambda: "generated.action",
        "resource_type": lambda: "user", "resource_id": lambda: str(rows.user),
        "since": lambda: datetime.now(UTC) - timedelta(hours=1), "work": lambda: _work,
        "service": lambda: "auth", "a": lambda: "auth", "b": lambda: "payments",
        "older_than": lambda: 60.0, "source": lambda: None,
        "users": lambda: [NewUser(email=f"{rows.fresh('bulk')}@example.com", name="Bulk",
                                  role="CUSTOMER", password_hash=hostile.HASH)],
        "fields": lambda: (("email",) if param.kind is param.VAR_POSITIONAL
                           else {"bio": "generated"}),
        "changes": lambda: {"bio": "changed"},
    }
    if name == "password_hash" and creates:
        return hostile.HASH  # creates need one of password and password_hash
    if name == "name" and entry.label.endswith("users.update"):
        return "Name"  # an update needs one of name and email_verified
    if name in by_name and (param.default is param.empty or param.kind in (
            param.VAR_KEYWORD, param.VAR_POSITIONAL) or name == "fields"):
        return by_name[name]()
    if param.default is not param.empty:
        return MISSING
    return _by_type(hint)


def _by_type(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    kind = typing.get_origin(hint) or hint
    if kind in (Union, types.UnionType):
        return _by_type(args[0])
    return {str: "x", int: 1, bool: False, float: 1.0, uuid.UUID: uuid.uuid4(),
            datetime: datetime.now(UTC), timedelta: timedelta(days=1)}.get(kind)


def _var_strategy(param: inspect.Parameter) -> st.SearchStrategy[hostile.Drawn]:
    if param.kind is param.VAR_POSITIONAL:
        return st.one_of(
            st.just(((), True)),
            hostile.strategy(param.name, str).map(lambda d: (("email", d[0]), d[1])),
            st.sampled_from(["nope", "id; DROP TABLE users"]).map(lambda v: ((v,), True)),
            st.just((("id", "email", "email"), False)))
    text = st.tuples(st.sampled_from(PROFILE_FIELDS), hostile.strategy("bio", str | None))
    json = hostile.strategy("preferences", dict[str, Any] | None)
    return st.one_of(
        text.map(lambda t: ({t[0]: t[1][0]}, t[1][1])),
        json.map(lambda d: ({"preferences": d[0]}, d[1])),
        st.sampled_from(["unknown", "\ud800", "password_hash", "user_id", "id"]).map(
            lambda k: ({k: "x"}, True)),
        st.just(({}, False)))


class Generated:
    """One generated call; shown short, since Hypothesis prints the failing one and a
    10,000-deep list has no repr."""

    def __init__(self, entry: Entry, name: str | None, value: Any, refuse: bool) -> None:
        self.entry, self.name, self.value, self.refuse = entry, name, value, refuse

    def __repr__(self) -> str:
        return f"{self.entry.label}({self.name}={hostile.shown(self.value)}), refuse={self.refuse}"


@st.composite
def calls(draw: st.DrawFn, entries: list[Entry]) -> Generated:
    entry = draw(st.sampled_from(entries))
    if not entry.params:
        return Generated(entry, None, None, False)
    param = draw(st.sampled_from(entry.params))
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        value, refuse = draw(_var_strategy(param))
    else:
        value, refuse = draw(hostile.strategy(param.name, entry.hints.get(param.name, Any)))
    return Generated(entry, param.name, value, refuse)


def arguments(rows: Rows, entry: Entry, hostile_name: str | None, value: Any,
              ) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = any(p.kind is p.VAR_POSITIONAL for p in entry.params)
    for param in entry.params:
        given_value = value if param.name == hostile_name else valid(rows, entry, param)
        if param.name == "password_hash" and hostile_name == "password":
            continue  # one of the two, or the refusal names them both
        if param.kind is param.VAR_POSITIONAL:
            args.extend(given_value)
        elif param.kind is param.VAR_KEYWORD:
            kwargs.update(given_value)
        elif positional and param.kind is param.POSITIONAL_OR_KEYWORD:
            args.append(param.default if given_value is MISSING else given_value)
        elif given_value is not MISSING:
            kwargs[param.name] = given_value
    return args, kwargs


def conforms(value: Any, hint: Any) -> bool:
    """Is ``value`` of the declared return type ``hint``?"""
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value)
    if origin is tuple:
        return isinstance(value, tuple) and len(value) == len(args) and all(
            conforms(v, a) for v, a in zip(value, args, strict=True))
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, (int, float))
    return not isinstance(hint, type) or isinstance(value, hint)


def names(error: errors.FieldRuleError, parameter: str, value: Any) -> bool:
    keys = list(value) if isinstance(value, dict) else []
    return any(error.field == n or error.field.startswith((f"{n}[", f"{n}."))
               for n in (parameter, *keys))


class Fingerprint:
    """Every table's count and md5 (each table its databases hold, not a list that a new table
    could miss), one statement per database, on connections of its own."""

    def __init__(self, stores: Stores) -> None:
        self.conns = [psycopg.connect(url, autocommit=True)
                      for url in dict.fromkeys(stores.urls.values())]
        self.queries = []
        self.tables: set[str] = set()
        for conn in self.conns:
            present = sorted(n for (n,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename NOT LIKE 'alembic_version%'"))
            self.tables.update(present)
            self.queries.append("SELECT " + ", ".join(
                f"(SELECT md5(count(*) || string_agg(t::text, '|' ORDER BY t::text)) "
                f"FROM {t} t)" for t in present))
        assert set(TABLES) <= self.tables, self.tables

    def take(self) -> list[Any]:
        return [conn.execute(q).fetchone() for conn, q in zip(self.conns, self.queries,
                                                              strict=True)]

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


class Runner:
    """The client, its valid rows and the fingerprint, on an event loop of the test's own."""

    def __init__(self, stores: Stores) -> None:
        self.loop = asyncio.new_event_loop()
        self.db = self.loop.run_until_complete(Database(stores.settings()).open())
        self.rows = self.loop.run_until_complete(self._rows())
        self.fingerprint = Fingerprint(stores)
        self.before = self.fingerprint.take()
        self.calls = 0
        self.last = ""

    async def _rows(self) -> Rows:
        db = self.db
        user = await db.users.create(email="owner@example.com", name="Owner", role="CUSTOMER",
                                     password_hash=hostile.HASH)
        payment = await db.payments.create(user.id, Decimal("5.00"), type="payment")
        device = await db.devices.register(user.id, "device-base")
        session = await db.sessions.open(user.id, device.id)
        await db.profiles.create(user.id, bio="base")
        await db.tokens.issue(user.id)
        await db.config.set("generated.flag", {"on": False})
        return Rows(user.id, user.email, payment.id, device.id, session.id)

    def call(self, entry: Entry, name: str | None, value: Any, refuse: bool) -> None:
        self.calls += 1
        args, kwargs = arguments(self.rows, entry, name, value)
        shown = f"{entry.label}({name}={hostile.shown(value)})"
        try:
            result = self.loop.run_until_complete(_call(entry.call, args, kwargs))
        except errors.FieldRuleError as error:
            assert name is not None and names(error, name, value), f"{shown}: {error!r}"
        except ANSWERS as error:
            assert not refuse, f"{shown} must be refused by name, not {error!r}"
            if isinstance(error, errors.TokenReusedError):  # revoking the family is the point
                self.before = self.fingerprint.take()
        except errors.SharedDbError as error:
            raise AssertionError(f"{shown}: an untyped refusal {error!r}") from error
        except BaseException as error:
            raise AssertionError(f"{shown}: not a shared-db error: {error!r}") from error
        else:
            assert not refuse, f"{shown} must be refused, returned {result!r:.200}"
            assert conforms(result, entry.hints.get("return", Any)), f"{shown}: {result!r}"
            self.before = self.fingerprint.take()
            self.last = shown
            return
        after = self.fingerprint.take()
        assert after == self.before, f"{shown} wrote although it failed (after {self.last})"
        self.last = shown

    def close(self) -> None:
        self.fingerprint.close()
        self.loop.run_until_complete(self.db.close())
        self.loop.close()


async def _call(call: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    result = call(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


def test_generated_hostile_calls_are_refused_by_name(stores: Stores) -> None:
    runner = Runner(stores)
    try:
        entries = entry_points(runner.db)
        assert len(entries) > 40 and {"db.users.create", "db.run", "db.payments.create",
                                      "create_user_with_profile(db, ...)",
                                      "db.idempotency.purge_expired"} <= {
            e.label for e in entries}
        wanted = CALLS[stores.topology]

        @settings(max_examples=wanted, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(calls(entries))
        def one(drawn: Generated) -> None:
            runner.call(drawn.entry, drawn.name, drawn.value, drawn.refuse)

        one()
    finally:
        runner.close()
    assert runner.calls >= wanted
