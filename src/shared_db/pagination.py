"""Opaque keyset cursors over ``(created_at, id)``.

Ordering by ``created_at`` alone (the guide's cursor example) skips or repeats rows that share a
timestamp; the id breaks ties, so every row has one place in the order and a page continues
exactly after the last row the client saw, whatever is inserted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import datetime

from shared_db.errors import ValidationError
from shared_db.validation import positive_int

MAX_PAGE = 1000
MAX_PAGE_NUMBER = 1_000_000  # the offset stays a bigint
MAX_CURSOR = 200  # an encoded position is about 110 characters
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: object) -> tuple[datetime, uuid.UUID]:
    """The position ``cursor`` stands for. Raises ValidationError for anything else.

    A cursor is checked for size and alphabet before it is decoded: what it decodes to is then
    at most a few hundred bytes of JSON, too short to nest deep enough to hurt the parser.
    """
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR or not _ALPHABET.match(cursor):
        raise ValidationError("cursor", "is not a cursor returned by this API")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = datetime.fromisoformat(stamp), uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError, AttributeError, UnicodeError,
            RecursionError):
        raise ValidationError("cursor", "is not a cursor returned by this API") from None
    if position[0].tzinfo is None:
        raise ValidationError("cursor", "is not a cursor returned by this API")
    return position


def page_size(limit: object, field: str = "limit") -> int:
    return positive_int(field, limit, maximum=MAX_PAGE)


def page_number(page: object) -> int:
    return positive_int("page", page, maximum=MAX_PAGE_NUMBER)
