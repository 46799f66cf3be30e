"""Which statements a restored script may hold, decided by PostgreSQL's own parser (pglast).

psql runs the script inside our one transaction (``--single-transaction``), so a statement of
the script that ends or splits that transaction (``COMMIT``, ``ROLLBACK``, ``SAVEPOINT``,
``PREPARE TRANSACTION``...) would commit half a restore, or let a later failure roll back only
part of it. Only top-level statements can do that: a ``COMMIT`` inside a function body is text
of the ``CREATE FUNCTION`` until the function runs, and then PostgreSQL refuses it inside our
transaction block. pg_dump writes none of these, nor any ``COPY`` other than ``FROM stdin``.

The lexer (``restore_lexer``) refuses text whose quoting depends on
``standard_conforming_strings`` or on the client encoding, so a statement changing them at run
time (``set_config(...)``, a function) changes nothing that was checked. A plain ``SET`` of them
to anything but what pg_dump writes is refused all the same, as are ``RESET ALL`` and
``DISCARD``: pg_dump writes none of these.
"""

from __future__ import annotations

import json
from typing import Any

from pglast.parser import ParseError, parse_sql_json

# Client-only encodings: a byte of their multibyte characters can be a backslash or a letter,
# so psql would read quotes and meta-commands elsewhere than the lexer does.
CLIENT_ONLY_ENCODINGS = frozenset({"sjis", "shiftjis", "mskanji", "win932", "windows932", "big5",
                                   "win950", "windows950", "gbk", "win936", "windows936", "uhc",
                                   "win949", "windows949", "gb18030", "johab", "shiftjis2004"})
LEXER_SETTINGS = ("standard_conforming_strings", "client_encoding")


class ScriptRefused(ValueError):
    """A statement of the script that must not run; ``offset`` is where it starts in the text
    that was checked."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.offset = offset


def _check_setting(kind: str, node: dict[str, Any]) -> None:
    """Refuse what could change how psql reads quotes from here on."""
    if kind == "VariableSetStmt":
        if node.get("kind") == "VAR_RESET_ALL":
            raise ValueError("RESET ALL (it can turn standard_conforming_strings off)")
        name = str(node.get("name") or "").lower()
        if name not in LEXER_SETTINGS:
            return
        args = node.get("args") or []
        value = str(args[0].get("A_Const", {}).get("sval", {}).get("sval", "")) \
            if len(args) == 1 and node.get("kind", "VAR_SET_VALUE") == "VAR_SET_VALUE" else ""
        if name == "standard_conforming_strings" and value.lower() == "on":
            return
        normal = "".join(c for c in value if c.isalnum()).lower()
        if name == "client_encoding" and normal and normal not in CLIENT_ONLY_ENCODINGS:
            return
        raise ValueError(f"a change of {name} other than pg_dump's own")
    if kind == "DiscardStmt":
        raise ValueError("DISCARD (it resets standard_conforming_strings)")


def _parsed(text: str) -> tuple[bytes, list[dict[str, Any]]]:
    """The statements of ``text`` as PostgreSQL's parser gives them (JSON, far cheaper than
    pglast's node objects on a big script), with the UTF-8 text their offsets count in."""
    encoded = text.encode()
    try:
        doc = json.loads(parse_sql_json(text))
    except ParseError as exc:
        where = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        raise ScriptRefused(f"it is not SQL PostgreSQL parses ({exc.args[0]})",
                            _chars(encoded, where)) from None
    return encoded, list(doc.get("stmts", []))


def _chars(encoded: bytes, offset: int) -> int:
    return len(encoded[:offset].decode(errors="ignore"))


def check_statements(text: str) -> None:
    """Check every top-level statement of ``text``.

    Raises:
        ScriptRefused: ``text`` does not parse, or holds transaction control, a ``COPY`` (the
            lexer hands each ``COPY`` to ``check_copy`` alone) or a change of how psql lexes.
    """
    encoded, statements = _parsed(text)
    lowered = text.lower()
    settings = any(name in lowered for name in LEXER_SETTINGS) or "reset" in lowered \
        or "discard" in lowered
    for raw in statements:
        ((kind, node),) = raw["stmt"].items()
        start = raw.get("stmt_location", 0)
        end = start + raw["stmt_len"] if raw.get("stmt_len") else len(encoded)
        if kind == "TransactionStmt":
            words = " ".join(encoded[start:end].decode(errors="replace").split()[:2]).upper()
            raise ScriptRefused(f"transaction control ({words}) would end the restore's one "
                                "transaction", _chars(encoded, start))
        if kind == "CopyStmt":
            raise ScriptRefused("a COPY where psql does not start one (COPY must begin its own "
                                "statement, as pg_dump writes it)", _chars(encoded, start))
        if settings:
            try:
                _check_setting(kind, node)
            except ValueError as exc:
                raise ScriptRefused(str(exc), _chars(encoded, start)) from None


def check_copy(text: str) -> None:
    """Accept ``text`` only as one ``COPY ... FROM stdin`` (psql then reads data lines).

    Raises:
        ScriptRefused: it is anything else: ``COPY ... TO``, ``FROM 'file'`` or ``PROGRAM``.
    """
    _, statements = _parsed(text)
    if len(statements) != 1 or "CopyStmt" not in statements[0]["stmt"]:
        raise ScriptRefused("a statement starting with COPY that is not one COPY", 0)
    copy = statements[0]["stmt"]["CopyStmt"]
    if not copy.get("is_from") or copy.get("is_program") or copy.get("filename") is not None:
        raise ScriptRefused("a COPY other than COPY ... FROM stdin (pg_dump writes no other; "
                            "a file or PROGRAM runs on the server)", 0)
    for option in copy.get("options") or []:
        element = option.get("DefElem", {})
        value = str(element.get("arg", {}).get("String", {}).get("sval", ""))
        if element.get("defname") == "format" and value.lower() == "binary":
            raise ScriptRefused("a COPY ... FROM stdin in binary format (psql would read the "
                                "rest of the script, past any \\. line, as its data; pg_dump "
                                "writes text format)", 0)
