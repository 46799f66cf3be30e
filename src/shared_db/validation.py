"""Input rules checked before anything is sent to the database.

Each check raises ``ValidationError(field, rule)``; nothing is written when one fails. Limits
are deliberately finite: a megabyte string or a NUL byte (which PostgreSQL ``text`` cannot hold)
is refused here with a clear message instead of failing deep in the driver.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from shared_db.errors import ValidationError

E = TypeVar("E", bound=StrEnum)

EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
MAX_EMAIL = 254
MAX_TEXT = 10_000
MAX_JSON_BYTES = 64 * 1024
MAX_AMOUNT = Decimal("99999999.99")  # numeric(10,2)
MIN_SECONDS = 0.001
"""The shortest duration any parameter accepts: PostgreSQL's timeouts are whole milliseconds,
and a shorter one would be sent as 0, which means no limit at all."""
MIN_DURATION = timedelta(milliseconds=1)


def text(field: str, value: object, *, max_length: int = MAX_TEXT, required: bool = True,
         ) -> str:
    """A string of 1..``max_length`` characters (0.. when not required) without NUL bytes."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL bytes")
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters, got {len(value)}")
    return value


def optional_text(field: str, value: object, *, max_length: int = MAX_TEXT) -> str | None:
    return None if value is None else text(field, value, max_length=max_length, required=False)


def email(value: object, field: str = "email") -> str:
    """A plausible address, normalised to lower case (addresses are unique case-insensitively)."""
    address = text(field, value, max_length=MAX_EMAIL).strip().lower()
    if not EMAIL.match(address):
        raise ValidationError(field, "must be an e-mail address like name@example.com")
    return address


def password(value: object, field: str = "password") -> str:
    """8 to 72 bytes: bcrypt ignores (newer versions refuse) anything past 72 bytes."""
    secret = text(field, value, max_length=MAX_TEXT)
    size = len(secret.encode())
    if size < 8 or size > 72:
        raise ValidationError(field, f"must be 8 to 72 bytes long, got {size}")
    return secret


def member(field: str, value: object, kind: type[E]) -> E:
    """A member of ``kind``, given as the member or its value."""
    try:
        return kind(value)  # type: ignore[arg-type]
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ValidationError(field, f"must be one of {allowed}, got {value!r}") from None


def amount(value: object, field: str = "amount") -> Decimal:
    """A positive amount with at most 2 decimal places that fits ``numeric(10,2)``."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValidationError(field, "must be a Decimal, int or str (never float: binary "
                              f"fractions are not money), got {type(value).__name__}")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValidationError(field, f"must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ValidationError(field, f"must be finite, got {number}")
    if number <= 0:
        raise ValidationError(field, f"must be greater than 0, got {number}")
    if number.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValidationError(field, f"must have at most 2 decimal places, got {number}")
    if number > MAX_AMOUNT:
        raise ValidationError(field, f"must be at most {MAX_AMOUNT}, got {number}")
    return number.quantize(Decimal("0.01"))


def json_object(field: str, value: object, *, allow_none: bool = True) -> dict[str, Any] | None:
    """A JSON object (dict) of at most 64 KiB with no NUL characters (jsonb refuses them)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, dict):
        raise ValidationError(field, f"must be a JSON object (dict), got {type(value).__name__}")
    checked: dict[str, Any] = json_value(field, value)
    return checked


def json_value(field: str, value: object) -> Any:
    """Any JSON value (object, array, string, number, boolean, null) within the limits."""
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field, f"must be JSON-serialisable ({exc})") from None
    if "\\u0000" in encoded:
        raise ValidationError(field, "must not contain NUL characters")
    if len(encoded.encode()) > MAX_JSON_BYTES:
        raise ValidationError(field, f"must be at most {MAX_JSON_BYTES} bytes as JSON")
    return value


def positive_int(field: str, value: object, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise ValidationError(field, f"must be an integer from 1 to {maximum}, got {value!r}")
    return value


def positive_duration(field: str, value: object, *, maximum: timedelta | None = None,
                      ) -> timedelta:
    """A timedelta of at least 1 ms (and at most ``maximum``, when given)."""
    if not isinstance(value, timedelta) or value < MIN_DURATION or (
            maximum is not None and value > maximum):
        bound = f" up to {maximum.days} days" if maximum is not None else ""
        raise ValidationError(field, f"must be a positive timedelta of at least 1 ms{bound}, "
                              f"got {value!r}")
    return value


def seconds(field: str, value: object, *, maximum: float) -> float:
    """A number of seconds from 0.001 (1 ms) to ``maximum``; never NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            MIN_SECONDS <= value <= maximum):
        raise ValidationError(field, f"must be a number of seconds from {MIN_SECONDS} (1 ms) "
                              f"to {maximum:g}, got {value!r}")
    return float(value)
