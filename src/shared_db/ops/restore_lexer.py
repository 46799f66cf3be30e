"""psql's lexer, as far as a restore needs it: where quotes, comments and statements begin and
end, so that ``restore_script`` sees a backslash, a ``;`` or the start of ``COPY`` data exactly
where psql will.

It follows psqlscan.l: standard strings (``'...'``, ``B''``, ``X''``, ``N''``, ``U&''``),
``E''`` strings with backslash escapes, quoted identifiers, dollar quotes (a ``$`` inside an
identifier or after a number's digits does not start one), nested block comments, line
comments, parentheses, and psql's heuristic that a statement starting ``CREATE [OR REPLACE]
FUNCTION|PROCEDURE`` ends only when its ``BEGIN``/``CASE`` ... ``END`` words balance (SQL-standard
bodies). Where psql's reading depends on flex's longest match in a way hard to copy (``1e'...'``
is a number then a standard string, ``x.e'...'`` an E string), the text is refused instead. It
assumes ``standard_conforming_strings`` on and a server-safe client encoding, which the script
may not change (``restore_sql``).
"""

from __future__ import annotations

import re

from shared_db.errors import BackupError

TOKEN = re.compile(r"[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*|[0-9]+"
                   r"|\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$|--|/\*|['\";()\\]")
ESCAPED = re.compile(r"\\.|''|'", re.DOTALL)
COMMENT = re.compile(r"/\*|\*/")
# psql's heuristic for SQL-standard function bodies looks at the statement's first words.
HEAD_WORDS = ("create", "function", "procedure", "or", "replace")


class PsqlLexer:
    """Lexical state carried from line to line; ``_lex`` reads one token from ``pos``."""

    def __init__(self) -> None:
        self.state, self.tag, self.depth, self.paren = "", "", 0, 0
        self._new_statement()

    def refuse(self, reason: str, line: int | None = None) -> BackupError:
        raise NotImplementedError

    def _end_statement(self, text: str, end: int) -> None:
        raise NotImplementedError

    def _new_statement(self) -> None:
        self.words, self.begin, self.first, self.text = 0, 0, "", False
        self.heads = ["", "", "", ""]

    def _lex(self, text: str, pos: int) -> int:
        if self.state == "'" or self.state == '"':
            end = text.find(self.state, pos)
            if end < 0:
                return len(text)
            if text.startswith(self.state * 2, end):
                return end + 2
            self.state = ""
            return end + 1
        if self.state == "e":
            for found in ESCAPED.finditer(text, pos):
                if found.group() == "'":
                    self.state = ""
                    return found.end()
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
        elif not token[0].isdigit():
            return self._word(text, token, start, end)
        return end

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
