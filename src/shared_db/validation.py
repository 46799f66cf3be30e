"""Input rules checked before anything is sent to the database.

Each check raises ``ValidationError(field, rule)``; nothing is written when one fails. Limits
are deliberately finite: a megabyte string or a NUL byte (which PostgreSQL ``text`` cannot hold)
is refused here with a clear message instead of failing deep in the driver.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from shared_db.errors import ValidationError

E = TypeVar("E", bound=StrEnum)

EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
MAX_EMAIL = 254
_ASCII_HIDDEN = re.compile(r"[\x00-\x20\x7f]")
MAX_TEXT = 10_000
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further
BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?\Z")
MAX_AMOUNT = Decimal("99999999.99")  # numeric(10,2)
MIN_SECONDS = 0.001
"""The shortest duration any parameter accepts: PostgreSQL's timeouts are whole milliseconds,
and a shorter one would be sent as 0, which means no limit at all."""
MIN_DURATION = timedelta(milliseconds=1)
DECIMAL_TEXT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A number as settings write it: ASCII digits, an optional fraction and exponent (``float()``
also takes "1_0", "inf" and other scripts' digits, none of them meant)."""


def text(field: str, value: object, *, max_length: int = MAX_TEXT, required: bool = True,
         ) -> str:
    """A string of 1..``max_length`` characters (0.. when not required) without NUL bytes."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters, got {len(value)}")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL bytes")
    utf8(field, value)
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    return value


def utf8(field: str, value: str) -> str:
    """``value`` when it can be sent as UTF-8: a lone surrogate (what ``json.loads`` makes of
    ``"\\ud800"``) cannot, and would fail in the driver."""
    if value.isascii():  # O(1) in CPython: the common case skips the encoding
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValidationError(field, "must be valid Unicode text (no lone surrogates)") from None
    return value


def optional_text(field: str, value: object, *, max_length: int = MAX_TEXT) -> str | None:
    return None if value is None else text(field, value, max_length=max_length, required=False)


def email(value: object, field: str = "email") -> str:
    """A plausible address, normalised to lower case (addresses are unique case-insensitively).

    Its local part may hold any printable character, letters of any script included, but no
    control, format or separator character: a zero-width space, a byte-order mark or a
    right-to-left override would make an address that looks like another one and is not.
    """
    address = text(field, value, max_length=MAX_EMAIL).strip().lower()
    if not EMAIL.match(address):
        raise ValidationError(field, "must be an e-mail address like name@example.com")
    if address.isascii():  # ASCII's control and separator characters, found at C speed
        found = _ASCII_HIDDEN.search(address)
        hidden = found.group() if found else None
    else:
        hidden = next((c for c in address if unicodedata.category(c)[0] in "CZ"), None)
    if hidden is not None:
        raise ValidationError(field, f"must not contain invisible or control characters, "
                              f"got U+{ord(hidden):04X}")
    return address


def password(value: object, field: str = "password", *, minimum: int = 8) -> str:
    """A string of ``minimum`` to 72 bytes as UTF-8, the same limit at creation and at login:
    bcrypt reads no further (version 4 silently ignores the rest, 5 refuses), so a longer one is
    refused rather than cut. New passwords need at least 8 bytes; a login needs 1."""
    secret = text(field, value, max_length=MAX_TEXT, required=False)
    size = len(secret.encode())
    if size < minimum or size > MAX_PASSWORD_BYTES:
        raise ValidationError(field, f"must be {minimum} to {MAX_PASSWORD_BYTES} bytes long, "
                              f"got {size}")
    return secret


def password_hash(value: object, field: str = "password_hash") -> str:
    """A bcrypt hash (``$2b$10$`` and 53 characters), so a plaintext can never be stored as one
    and every stored hash can be checked at login."""
    hashed = text(field, value, max_length=100)
    if not BCRYPT_HASH.match(hashed):
        raise ValidationError(field, "must be a bcrypt hash like $2b$10$ followed by 53 "
                              "characters of [./A-Za-z0-9]")
    return hashed


def flag(field: str, value: object) -> bool:
    """A bool: ``"false"`` or ``0`` is refused rather than read as true or false."""
    if not isinstance(value, bool):
        raise ValidationError(field, f"must be a bool (True or False), got {type(value).__name__}")
    return value


def identifier(field: str, value: object) -> uuid.UUID:
    """A ``uuid.UUID``: the type of every id, checked here rather than by the server."""
    if not isinstance(value, uuid.UUID):
        raise ValidationError(field, f"must be a uuid.UUID, got {type(value).__name__}")
    return value


def identifiers(field: str, value: object, *, maximum: int = MAX_TEXT) -> list[uuid.UUID]:
    """A list or tuple of at most ``maximum`` ids."""
    if not isinstance(value, (list, tuple)):
        raise ValidationError(field, f"must be a list of uuid.UUID, got {type(value).__name__}")
    if len(value) > maximum:
        raise ValidationError(field, f"must hold at most {maximum} ids, got {len(value)}")
    for index, item in enumerate(value):
        identifier(f"{field}[{index}]", item)
    return list(value)


def aware(field: str, value: object) -> datetime:
    """A datetime with a time zone: a naive one would be read in the server's zone."""
    if not isinstance(value, datetime) or _offset(value) is None:
        raise ValidationError(field, f"must be a timezone-aware datetime, got {shown(value)}")
    return value


def _offset(value: datetime) -> timedelta | None:
    """``value``'s UTC offset, or None when it has none or its tzinfo cannot give one (a
    tzinfo of the caller's whose ``utcoffset`` raises, or answers more than a day)."""
    try:
        return value.utcoffset()
    except Exception:  # datetime itself raises ValueError beyond 24 hours
        return None


def small_int(digits: str, limit: int) -> int:
    """ASCII ``digits`` as an int, or ``limit + 1`` when there are more than 18 of them after
    any leading zeros: int() refuses more than 4,300 digits, and every limit they are checked
    against is far shorter."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 18 else limit + 1


def shown(value: object) -> str:
    """``value`` as an error message may quote it: short, and never failing (the repr of a
    huge int raises, a megabyte string would flood the log)."""
    try:
        text = repr(value)
    except Exception:
        return f"a value of type {type(value).__name__}"
    return text if len(text) <= 60 else f"{text[:57]}..."


def member(field: str, value: object, kind: type[E]) -> E:
    """A member of ``kind``, given as the member or its value."""
    try:
        return kind(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        allowed = ", ".join(m.value for m in kind)
        raise ValidationError(field, f"must be one of {allowed}, got {shown(value)}") from None


def amount(value: object, field: str = "amount") -> Decimal:
    """The one money rule: a ``Decimal``, an ``int`` or a decimal string (never a float: binary
    fractions are not money), finite, greater than 0, at most 99999999.99 (``numeric(10,2)``),
    whose value has at most 2 decimal places (``Decimal("1.10000")`` is 1.10; 1.005 is refused).
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValidationError(field, "must be a Decimal, int or decimal string (never float: "
                              f"binary fractions are not money), got {type(value).__name__}")
    if isinstance(value, str) and len(value) > 40:
        raise ValidationError(field, f"must be a number of at most 40 characters, "
                              f"got {len(value)}")
    if isinstance(value, str) and not DECIMAL.match(value):
        # Decimal() reads far more than an amount: any script's digits (FULLWIDTH DIGIT ONE is
        # 1), blanks around it, a sign, an exponent and "1_00", which it makes 100.
        raise ValidationError(field, "must be a decimal number in ASCII digits such as 10.50 "
                              "(no sign, exponent, blank or _)")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValidationError(field, "must be a decimal number") from None
    if not number.is_finite():
        raise ValidationError(field, f"must be finite, got {number}")
    if number <= 0:
        raise ValidationError(field, "must be greater than 0")
    if number > MAX_AMOUNT:
        raise ValidationError(field, f"must be at most {MAX_AMOUNT}")
    cents = number.quantize(Decimal("0.01"))
    if cents != number:
        raise ValidationError(field, "must have at most 2 decimal places")
    return cents


def json_object(field: str, value: object, *, allow_none: bool = True) -> dict[str, Any] | None:
    """A JSON object (dict) of at most 64 KiB with no NUL characters (jsonb refuses them)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, dict):
        raise ValidationError(field, f"must be a JSON object (dict), got {type(value).__name__}")
    checked: dict[str, Any] = json_value(field, value)
    return checked


def json_value(field: str, value: object) -> Any:
    """Any JSON value (object with string keys, array, string, finite number, boolean, null)
    nested at most 32 deep and at most 64 KiB as UTF-8 JSON, without NUL or lone surrogates."""
    _json_shape(field, value)
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:  # a NaN, or an int past Python's digit limit
        raise ValidationError(field, f"must be JSON-serialisable ({exc})") from None
    try:
        size = len(encoded.encode())
    except UnicodeEncodeError:
        raise ValidationError(field, "must be valid Unicode text (no lone surrogates)") from None
    if size > MAX_JSON_BYTES:
        raise ValidationError(field, f"must be at most {MAX_JSON_BYTES} bytes as JSON")
    return value


MAX_INT_DIGITS = 4000
BIG_INT = 10 ** MAX_INT_DIGITS  # json.dumps refuses an int past Python's 4300-digit limit


def _json_shape(field: str, value: object) -> None:
    # Iterative, and bounded in depth and node count before json.dumps sees it: dumps recurses,
    # so a deeply nested (or self-containing) value would raise RecursionError there.
    stack: list[tuple[object, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > MAX_JSON_DEPTH or nodes > MAX_JSON_BYTES:
            raise ValidationError(field, f"must be nested at most {MAX_JSON_DEPTH} deep and at "
                                  f"most {MAX_JSON_BYTES} bytes as JSON")
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise ValidationError(field, "object keys must be strings, got "
                                          f"{type(k).__name__}")
                _no_nul(field, k)
                stack.append((v, depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            _no_nul(field, item)
        elif isinstance(item, int) and not isinstance(item, bool) and not -BIG_INT < item < BIG_INT:
            # The rule an idempotent call's stored request and result follow (tagged_json), so
            # a value is refused alike with or without a key.
            raise ValidationError(field, f"must hold integers of at most {MAX_INT_DIGITS} digits")
        elif item is not None and not isinstance(item, (int, float)):
            raise ValidationError(field, f"must be JSON-serialisable, not {type(item).__name__}")


def _no_nul(field: str, text: str) -> None:
    # The character itself: searching the JSON text for "\\u0000" also found a string that
    # spells those six characters (a backslash, then u0000), which jsonb takes.
    if "\x00" in text:
        raise ValidationError(field, "must not contain NUL characters")


def sequence(field: str, value: object) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(field, f"must be a list, got {type(value).__name__}")
    try:
        len(value)
    except (OverflowError, ValueError, TypeError):  # a __len__ that lies
        raise ValidationError(field, f"must be a list whose length can be read, got "
                              f"{type(value).__name__}") from None
    return value


def positive_int(field: str, value: object, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise ValidationError(field, f"must be an integer from 1 to {maximum}, got {shown(value)}")
    return value


def positive_duration(field: str, value: object, *, maximum: timedelta | None = None,
                      ) -> timedelta:
    """A timedelta of at least 1 ms (and at most ``maximum``, when given)."""
    if not isinstance(value, timedelta) or value < MIN_DURATION or (
            maximum is not None and value > maximum):
        bound = f" up to {maximum.days} days" if maximum is not None else ""
        raise ValidationError(field, f"must be a positive timedelta of at least 1 ms{bound}, "
                              f"got {shown(value)}")
    return value


def seconds(field: str, value: object, *, maximum: float) -> float:
    """A number of seconds from 0.001 (1 ms) to ``maximum``; never NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            MIN_SECONDS <= value <= maximum):
        raise ValidationError(field, f"must be a number of seconds from {MIN_SECONDS} (1 ms) "
                              f"to {maximum:g}, got {shown(value)}")
    return float(value)
