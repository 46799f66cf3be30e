"""Hostile values per parameter kind, for the generated-input test.

Each strategy yields ``(value, refuse)``: ``refuse`` says the value can never be valid for a
parameter of that kind (a lone surrogate in text, a str for an id, NaN for a number), so the call
must fail with a ValidationError naming the parameter; otherwise it may also succeed.
"""

from __future__ import annotations

import base64
import json
import math
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from hypothesis import strategies as st

from shared_db.auth.batch import NewUser
from shared_db.validation import MAX_JSON_DEPTH, MAX_TEXT, shown

__all__ = ["shown", "strategy"]

Drawn = tuple[Any, bool]
MEGABYTE = "x" * 1_048_576


def _deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"k": value}
    return value


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


CIRCULAR: dict[str, Any] = {}
CIRCULAR["self"] = CIRCULAR
NOT_STR = [1, 1.5, b"bytes", ["x"], {"x": 1}, object(), True, Decimal("1"), uuid.UUID(int=7)]
BAD_TEXT = ["\ud800", "a\udfffb", "\udc80" * 3, "x\x00y", "\x00", "é" * (MAX_TEXT + 1),
            MEGABYTE, *NOT_STR]
ODD_TEXT = ["", " ", "\t\n", "'); DELETE FROM users; --", "\u202eevil", "😀" * 10, "x" * 10_000,
            "a" * 201, "ADMIN", "name@example.com", "%s %(x)s {0}", "\\", "\u0085\u2028"]
BAD_JSON = [_deep_list(10_000), _deep_dict(40), CIRCULAR, {"k": math.nan}, {"k": math.inf},
            {"k": b"x"}, {"k": {1, 2}}, {"k": "\ud800"}, {"\udfff": 1}, {"k": "a\x00"},
            {1: "int key"}, {(1, 2): "tuple key"}, {"k": "x" * 70_000}, {"k": object()},
            {"k": Decimal(1)}, {"k": 10**5000}, {"k": [_deep_list(40)]}]
ODD_JSON = [{}, {"a": [1, "b", None, True, 2.5]}, {"emoji": "😀", "rtl": "\u202e"},
            _deep_dict(20), {"x" * 100: "y" * 1000}, {"n": -(2**63)}]
BAD_UUID = ["not-a-uuid", str(uuid.UUID(int=1)), uuid.UUID(int=1).hex, 0, -1, 2**128,
            b"\x00" * 16, "", 1.5, [uuid.UUID(int=1)], "\ud800", "x\x00"]
BAD_BOOL = ["false", "true", 0, 1, "", 1.0, [], "no", Decimal(0)]
BAD_INT = [True, False, 1.5, math.nan, math.inf, "1", Decimal(1), [1], b"1"]
ODD_INT = [0, -1, -(2**63), 2**63, 10**100, 10**5000, 1, 50, 1001]
BAD_FLOAT = [math.nan, math.inf, -math.inf, True, "1", Decimal("1"), complex(1, 1), [1.0]]
ODD_FLOAT = [0.0, -0.0, -1.0, 1e-9, 1e308, 0.001, 5, 86_401.0, 2**70]
BAD_AMOUNT = [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-1"), 0,
              Decimal("0"), Decimal("1.005"), 0.1, 1.5, math.nan, "abc", "1" * 41, True,
              None, 10**20, Decimal("1e100"), "", "-0.01", [1], Decimal("100000000"),
              Decimal("1e-999999"), "\ud800", "1\x00", "\uff11", "\u0661.00"]
ODD_AMOUNT = [Decimal("1.10000"), "12.34", 5, Decimal("99999999.99"), Decimal("0.01"),
              "1e-2", " 7.5 "]
_naive = datetime(2020, 1, 1).isoformat()
BAD_CURSOR = ["garbage!", "", "=", "A" * 1_000_000, _b64(json.dumps(_deep_list(600))),
              _b64(json.dumps(_deep_list(60))), _b64("[1, 2]"), _b64("{}"),
              _b64(json.dumps([_naive, str(uuid.UUID(int=1))])), _b64("[\"x\", \"y\"]"),
              "\ud800", "ab\x00", 123, b"cursor", ["c"], _b64("\"\\ud800\"")]
BAD_DELTA = [timedelta(0), timedelta(-1), timedelta(microseconds=1), timedelta.max,
             timedelta.min, 5, "1 day", 1.5, math.nan]
ODD_DELTA = [timedelta(days=1), timedelta(milliseconds=1), timedelta(days=3650)]
BAD_TIME = [datetime(2020, 1, 1), "2020-01-01", 0, date(2020, 1, 1), math.nan]
ODD_TIME = [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC),
            datetime.now(UTC), datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))]
BAD_EMAIL = ["not-an-email", "a@b", "@x.io", "a\x00@x.io", "\ud800@x.io",
             "x" * 300 + "@x.io", "a b@x.io", "a@-x.io", "a\u200b@x.io", "\ufeffa@x.io",
             "a\u202e@x.io", "a\x7f@x.io", "a\x85@x.io"]
ODD_EMAIL = ["UPPER@EXAMPLE.COM", " pad@example.com ", "o'brien@example.com",
             "user+tag@sub.example.co", "josé@example.com", "用户@example.com"]
BAD_PASSWORD = ["é" * 37, "x" * 73, "\ud800" * 10, "pass\x00word", 12345678, b"password1", ""]
ODD_PASSWORD = ["password1", "short", "日本語のパスワード", "x" * 72]
HASH = "$2b$04$JnfTEVhhG5yzPho/1c/sjeo99NUPRaCHqJpkkSyGtFCKdgEL.c5Eq"  # "x" at cost 4
BAD_HASH = ["password123", "$2b$10$short", "$2x$10$" + "a" * 53, "$2b$03$" + "a" * 53,
            "$2b$10$" + "a" * 52 + "!", HASH + " ", 1, b"$2b$", "\ud800"]
BAD_KEY = ["", " ", "k" * 256, "\ud800", "\x00", 1, uuid.UUID(int=3), b"key"]
ODD_KEY = ["k" * 255, "request-1"]


def _user(**changes: Any) -> NewUser:
    fields: dict[str, Any] = {"email": "bulk@example.com", "name": "Bulk", "role": "CUSTOMER",
                              "password_hash": HASH} | changes
    return NewUser(**fields)


BAD_USERS = ["abc", 1, [1], [{"email": "a@b.co"}], {"a": 1}, b"x",
             [_user(email="\ud800@x.io")], [_user(email_verified="false")],
             [_user(password_hash="plaintext")], [_user(password_hash=None, password="x" * 73)],
             [_user(role="GOD")], [_user(password="password1")], [_user(name="\x00")],
             [_user(), None]]
BAD_LITERAL = ["bogus", "", 1, "SERIALIZABLE", "auth ", "AUTH", b"auth", "\ud800", True]
BAD_OBJECT = ["x", 1, {}, object(), b"x", 1.5]


def _pick(bad: list[Any], odd: list[Any] | None = None) -> st.SearchStrategy[Drawn]:
    refused = st.sampled_from(bad).map(lambda v: (v, True))
    return refused if not odd else st.one_of(refused, st.sampled_from(odd).map(
        lambda v: (v, False)))


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _members(hint: Any) -> list[Any]:
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return [hint]
    return [a for a in typing.get_args(hint) if a is not type(None)]


def strategy(name: str, hint: Any) -> st.SearchStrategy[Drawn]:
    """Hostile values for the parameter ``name: hint``."""
    kinds = [k for k in (typing.get_origin(m) or m for m in _members(hint))
             if isinstance(k, type)]
    enum = any(issubclass(k, Enum) for k in kinds)
    # The strategy is the first member's; a value it refuses may be another member's (a UUID
    # for ``str | uuid.UUID``), and then it may succeed. With an enum, ``str`` is its values.
    others = tuple(k for k in kinds[1:] if not (enum and k is str))

    def allowed_elsewhere(drawn: Drawn) -> Drawn:
        value, refuse = drawn
        return value, refuse and not (others and isinstance(value, others))
    return _strategy(name, hint).map(allowed_elsewhere)


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="
SPLICED = st.builds(lambda a, bad, b: a + bad + b, st.text(max_size=12),
                    st.sampled_from(["\ud800", "\udfff", "\udc80\udc80", "\x00"]),
                    st.text(max_size=12))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)


def _generated(name: str, hint: Any) -> st.SearchStrategy[Drawn] | None:
    """Values drawn afresh for each call, beside the fixed lists (which alone run out after
    about 3,000 distinct calls a topology): text with a lone surrogate or NUL spliced in, any
    text or int for an id, any number where a bool, int or amount is due, any JSON."""
    if name == "cursor":
        return st.one_of(SPLICED.map(lambda v: (v, True)),
                         st.text(B64, max_size=300).map(lambda v: (v, False)),
                         JSON.map(lambda v: (_b64(json.dumps(v)), False)),
                         st.integers(1, 500).map(lambda d: (_b64(json.dumps(_deep_list(d))),
                                                            False)))
    if name == "amount":
        return st.one_of(st.floats().map(lambda v: (v, True)),
                         st.decimals().map(lambda v: (v, False)),
                         st.text(max_size=12).map(lambda v: (v, False)))
    members = _members(hint)
    base = typing.get_origin(members[0]) or members[0]
    if base in (str, typing.Annotated, typing.Literal) or (
            isinstance(base, type) and issubclass(base, Enum)):
        return SPLICED.map(lambda v: (v, True))
    if base is uuid.UUID:
        return st.one_of(st.text(max_size=40), st.integers(), st.binary(max_size=16)).map(
            lambda v: (v, True))
    if base is bool:
        return st.one_of(st.integers(), st.floats(), st.text(max_size=5)).map(
            lambda v: (v, True))
    if base is int:
        return st.one_of(st.integers().map(lambda v: (v, False)),
                         st.floats().map(lambda v: (v, True)))
    if base is float:
        return st.floats().map(lambda v: (v, not math.isfinite(v)))
    deep = st.integers(MAX_JSON_DEPTH + 1, 5000)
    if base is dict:
        return st.one_of(st.dictionaries(st.text(max_size=8), JSON, max_size=4).map(
            lambda v: (v, False)), deep.map(lambda d: (_deep_dict(d), True)))
    if name in ("value", "default"):
        return st.one_of(JSON.map(lambda v: (v, False)),
                         deep.map(lambda d: (_deep_list(d), name == "value")))
    return None


def _strategy(name: str, hint: Any) -> st.SearchStrategy[Drawn]:
    by_name = {"amount": _pick(BAD_AMOUNT, ODD_AMOUNT), "cursor": _pick(BAD_CURSOR),
               "email": _pick(BAD_EMAIL + NOT_STR, ODD_EMAIL),
               "password": _pick(BAD_PASSWORD, ODD_PASSWORD),
               "password_hash": _pick(BAD_HASH, [HASH]),
               "idempotency_key": _pick(BAD_KEY, ODD_KEY), "value": _pick(BAD_JSON, ODD_JSON),
               "default": st.sampled_from([*ODD_JSON, *BAD_JSON]).map(lambda v: (v, False))}
    found = by_name.get(name)
    if found is None:
        found = _by_type(hint)
    generated = _generated(name, hint)
    if generated is not None:
        found = st.one_of(found, generated)
    if _optional(hint) or hint is Any:
        return found
    return st.one_of(found, st.just((None, True)))


def _by_type(hint: Any) -> st.SearchStrategy[Drawn]:
    members = _members(hint)
    base = typing.get_origin(members[0]) or members[0]
    if typing.get_origin(hint) is typing.Annotated or base is typing.Annotated:
        return _pick(BAD_LITERAL + BAD_TEXT[:5], ["auth", "payments"])
    if any(isinstance(m, type) and issubclass(m, Enum) for m in members):
        enums = [m for m in members if isinstance(m, type) and issubclass(m, Enum)]
        others = [e for e in _ENUMS if e not in enums]
        return _pick(["refunded", "GOD", "", "admin", "ADMIN ", "pending-ish", 1, "\ud800",
                      "x\x00", *[next(iter(e)) for e in others]])
    if base is typing.Literal:
        return _pick(BAD_LITERAL)
    if base is str:
        return _pick(BAD_TEXT, ODD_TEXT)
    if base is uuid.UUID:
        return _pick(BAD_UUID, [uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)])
    if base is bool:
        return _pick(BAD_BOOL)
    if base is int:
        return _pick(BAD_INT, ODD_INT)
    if base is float:
        return _pick(BAD_FLOAT, ODD_FLOAT)
    if base is timedelta:
        return _pick(BAD_DELTA, ODD_DELTA)
    if base is datetime:
        return _pick(BAD_TIME, ODD_TIME)
    if base is dict:
        return _pick([*BAD_JSON, [1], "dark", 1], ODD_JSON)
    if base in (list, Sequence):
        return _pick(["abc", [str(uuid.uuid4())], [None], [1], {uuid.uuid4()}, uuid.uuid4(),
                      [[uuid.uuid4()]], [uuid.uuid4()] * (MAX_TEXT + 1), b"x", 5],
                     [[], [uuid.UUID(int=5)] * 3, [uuid.uuid4() for _ in range(50)]])
    if base is Iterable:
        return _pick(BAD_USERS, [[], [_user(email="odd.one@example.com")]])
    if base is Callable:
        return _pick([1, "work", [], object(), b"f"])
    if hint is Any or isinstance(hint, typing.TypeVar):
        return _pick([], [*ODD_JSON, *BAD_JSON[:3], *NOT_STR])
    return _pick(BAD_OBJECT)


_ENUMS: list[type[Enum]] = []


def register_enums(*kinds: type[Enum]) -> None:
    _ENUMS.extend(kinds)

