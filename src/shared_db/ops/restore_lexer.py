"""psql's lexer, as far as a restore needs it: where quotes, comments and statements begin and
end, so that ``restore_script`` sees a backslash, a ``;`` or the start of ``COPY`` data exactly
where psql will.

It follows psqlscan.l: standard strings (``'...'``, ``B''``, ``X''``, ``N''``, ``U&''``),
``E''`` strings with backslash escapes, quoted identifiers, dollar quotes (a ``$`` inside an
identifier or after a number's digits does not start one), nested block comments, line
comments, parentheses, and psql's heuristic that a statement starting ``CREATE [OR REPLACE]
FUNCTION|PROCEDURE`` ends only when its ``BEGIN``/``CASE`` ... ``END`` words balance (SQL-standard
bodies). Where psql's reading depends on flex's longest match in a way hard to copy (``1e'...'``
is a number then a standard string, ``x.e'...'`` an E string), the text is refused instead.

The reading must not depend on settings a statement can change at run time
(``set_config('standard_' || 'conforming_strings', 'off', false)`` names neither), so text that
psql would read differently under some value of them is refused: a standard string in which a
quote follows an odd run of backslashes (``\\'`` ends it with ``standard_conforming_strings``
on and not with it off); inside any quoted string, a byte of 0x80 or more right before a
backslash (in SJIS, BIG5, GBK or GB18030 that backslash is the second byte of a character, not
an escape); a line comment with such a byte in its last three before the line break (psql reads
the byte and the break as one character, and the comment runs on into the next line, unseen by
the server). psql also replaces ``:NAME`` outside quotes with the value of its own variable
``NAME`` (``DBNAME``, ``USER``...) and reads the value as text of the script, so those are
refused too; restore sets no variable of its own.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from shared_db.errors import BackupError

TOKEN = re.compile(r"[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*|[0-9]+"
                   r"|\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$|--|/\*|::|:="
                   r"|:[A-Za-z0-9_\x80-\xff]+|['\";()\\]")
ESCAPED = re.compile(r"\\.|''|'", re.DOTALL)
COMMENT = re.compile(r"/\*|\*/")
HIGH_BACKSLASH = re.compile(r"[\x80-\xff]\\")
HIGH = re.compile(r"[\x80-\xff]")
# The variables psql 18 sets itself (restore sets none); psql substitutes only those set.
PSQL_VARIABLES = frozenset({
    "AUTOCOMMIT", "COMP_KEYWORD_CASE", "DBNAME", "ECHO", "ECHO_HIDDEN", "ENCODING", "ERROR",
    "FETCH_COUNT", "HIDE_TABLEAM", "HIDE_TOAST_COMPRESSION", "HISTCONTROL", "HISTFILE", "HISTSIZE",
    "HOST", "IGNOREEOF", "LASTOID", "LAST_ERROR_MESSAGE", "LAST_ERROR_SQLSTATE",
    "ON_ERROR_ROLLBACK", "ON_ERROR_STOP", "PIPELINE_COMMAND_COUNT", "PIPELINE_RESULT_COUNT",
    "PIPELINE_SYNC_COUNT", "PORT", "PROMPT1", "PROMPT2", "PROMPT3", "QUIET", "ROW_COUNT",
    "SERVER_VERSION_NAME", "SERVER_VERSION_NUM", "SERVICE", "SERVICEFILE", "SHELL_ERROR",
    "SHELL_EXIT_CODE", "SHOW_ALL_RESULTS", "SHOW_CONTEXT", "SINGLELINE", "SINGLESTEP", "SQLSTATE",
    "USER", "VERBOSITY", "VERSION", "VERSION_NAME", "VERSION_NUM", "WATCH_INTERVAL"})
SETTING_FREE = ("with standard_conforming_strings on it ends at that quote, with it off it "
                "does not, and a statement can turn it off at run time")
# psql's heuristic for SQL-standard function bodies looks at the statement's first words.
HEAD_WORDS = ("create", "function", "procedure", "or", "replace")


class PsqlLexer(ABC):
    """Lexical state carried from line to line; ``_lex`` reads one token from ``pos``."""

    def __init__(self) -> None:
        self.state, self.tag, self.depth, self.paren = "", "", 0, 0
        self._new_statement()

    @abstractmethod
    def refuse(self, reason: str, line: int | None = None) -> BackupError:
        """The error naming ``line`` (default: the current one) and ``reason``."""

    @abstractmethod
    def _end_statement(self, text: str, end: int) -> None:
        """A ``;`` at ``end - 1`` of ``text`` ended a statement where psql ends one."""

    def _new_statement(self) -> None:
        self.words, self.begin, self.first, self.text = 0, 0, "", False
        self.heads = ["", "", "", ""]

    def _lex(self, text: str, pos: int) -> int:
        if self.state == "'" or self.state == '"':
            end = text.find(self.state, pos)
            if self.state == "'":
                self._quoted(text, pos, len(text) if end < 0 else end)
                if end >= 0 and (end - len(text[pos:end].rstrip("\\")) - pos) % 2:
                    raise self.refuse(f"a quote after an odd number of backslashes in a '...' "
                                      f"string ({SETTING_FREE}): write such a string as E'...'")
            if end < 0:
                return len(text)
            if text.startswith(self.state * 2, end):
                return end + 2
            self.state = ""
            return end + 1
        if self.state == "e":
            for found in ESCAPED.finditer(text, pos):
                if found.group() == "'":
                    self._quoted(text, pos, found.end())
                    self.state = ""
                    return found.end()
            self._quoted(text, pos, len(text))
            return len(text)
        if self.state == "$":
            end = text.find(self.tag, pos)
            if end < 0:
                return len(text)
            self.state = ""
            return end + len(self.tag)
        if self.state == "*":
            for found in COMMENT.finditer(text, pos):
                self.depth += 1 if found.group() == "/*" else -1
                if self.depth == 0:
                    self.state = ""
                    return found.end()
            return len(text)
        match = TOKEN.search(text, pos)
        if match is None:
            self.text = self.text or bool(text[pos:].strip())
            return len(text)
        token, start, end = match.group(), match.start(), match.end()
        if token == "--":
            self.text = self.text or bool(text[pos:start].strip())
            if text.endswith("\n") and HIGH.search(text, max(start, len(text) - 4), len(text)):
                raise self.refuse("a line comment ending in a byte of 0x80 or more (in client "
                                  "encodings such as SJIS psql reads it and the line break as "
                                  "one character, and the comment runs on into the next line)")
            return len(text)
        if token == "/*":
            self.text = self.text or bool(text[pos:start].strip())
            self.state, self.depth = "*", 1
            return end
        self.text = True
        if token == "\\":
            shown = text[start:].strip()[:60]
            raise self.refuse(f"psql meta-command {shown!r} (a script may hold none but "
                              "pg_dump's own \\restrict and \\unrestrict lines)")
        if token in ("'", '"'):
            self.state = token
        elif token.startswith("$"):
            self.state, self.tag = "$", token
        elif token == "(":
            self.paren += 1
        elif token == ")":
            self.paren = max(0, self.paren - 1)
        elif token == ";":
            if self.paren == 0 and self.begin == 0:
                self._end_statement(text, end)
        elif token[0] == ":":
            if token[1:] in PSQL_VARIABLES:
                raise self.refuse(f"{token} outside quotes (psql replaces it with the value of "
                                  f"its variable {token[1:]} and reads that as part of the "
                                  "script)")
        elif not token[0].isdigit():
            return self._word(text, token, start, end)
        return end

    def _quoted(self, text: str, start: int, end: int) -> None:
        if HIGH_BACKSLASH.search(text, start, end):
            raise self.refuse("a byte of 0x80 or more right before a backslash in a quoted "
                              "string (in client encodings such as SJIS or GBK that backslash "
                              "is part of a character, not an escape, so psql would end the "
                              "string elsewhere)")

    def _word(self, text: str, token: str, start: int, end: int) -> int:
        low, after = token.lower(), text[end:end + 2]
        if low in ("b", "x", "n", "e") and after[:1] == "'":
            if low == "e" and start > 0 and (text[start - 1].isdigit() or text[start - 1] == "."):
                raise self.refuse("a string whose quoting psql could read either way (E' "
                                  "right after a number or a dot)")
            self.state = "e" if low == "e" else "'"
            return end + 1
        if low == "u" and after in ("&'", '&"'):
            self.state = after[1]
            return end + 2
        if not self.first:
            self.first = low
        if self.words < 4 and low in HEAD_WORDS:
            self.heads[self.words] = low[0]
        self.words += 1
        h = self.heads
        if h[0] == "c" and self.paren == 0 and (
                h[1] in ("f", "p") or (h[1] == "o" and h[2] == "r" and h[3] in ("f", "p"))):
            if low == "begin" or (low == "case" and self.begin >= 1):
                self.begin += 1
            elif low == "end" and self.begin > 0:
                self.begin -= 1
        return end
