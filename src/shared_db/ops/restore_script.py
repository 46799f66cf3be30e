"""Reading a restore script the way psql will, and refusing what must not run.

psql runs meta-commands (``\\! shell``, ``\\copy``, ``\\o file``, ``\\i``) from anywhere outside
quotes, comments and ``COPY ... FROM stdin`` data, and a SHA-256 in the manifest proves nothing
about a file whose manifest can be rewritten with it. So ``ScriptScanner`` lexes the script as
psql's lexer does (quotes, ``E''`` strings, dollar quotes, nested comments, and psql's rule that a
``;`` inside ``CREATE FUNCTION ... BEGIN ATOMIC ... END`` does not end the statement), follows
each ``COPY ... FROM stdin`` through its data to the ``\\.`` line without looking inside it, and
hands the statements in pieces of about ``BATCH`` characters to PostgreSQL's parser
(``restore_sql``). It refuses every meta-command except pg_dump's own ``\\restrict KEY`` (before
any statement) and ``\\unrestrict KEY`` (after every statement: nothing but comments may follow
it), which it drops: ``restore`` puts psql under its own
``\\restrict`` with a key no script can know, so psql itself refuses any meta-command too. The
script must end outside any quote, statement or ``COPY`` data, or it would swallow the epilogue
that checks the restored rows.

``scan`` output is released only once the statements in it have passed, so text is never sent
to psql ahead of its check. ``COPY`` data is released as it is read (its ``COPY`` statement has
passed, and psql reads data lines without lexing them), so a table of any size streams through.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable

from shared_db.errors import BackupError
from shared_db.ops.restore_lexer import PsqlLexer
from shared_db.ops.restore_sql import ScriptRefused, check_copy, check_statements

BATCH = 1 << 20
RESTORE_REFUSED = "is refused, nothing was restored"
RESTRICT = re.compile(r"\\(restrict|unrestrict) ([A-Za-z0-9]+)\r?\n?")
COPY_END = re.compile(rb"^\\\.\r?\n", re.MULTILINE)
# A partial data line that may still become the \. line, so it waits for more input.
END_PREFIXES = (b"\\", b"\\.", b"\\.\r")


class ScriptScanner(PsqlLexer):
    """Feed the script in chunks; ``feed`` and ``finish`` return what may be passed to psql.

    Raises (from ``feed`` and ``finish``):
        BackupError: the script holds something that must not run; the message names the
            line.
    """

    def __init__(self, name: str, dropped: Iterable[bytes] = (),
                 verdict: str = RESTORE_REFUSED) -> None:
        self.name, self.dropped = name, {line.rstrip(b"\r\n") for line in dropped}
        self.verdict = verdict
        self.line_no, self.carry, self.copy, self.mid_line = 0, b"", False, False
        super().__init__()
        self.key: str | None = None
        self.meta_done = self.sql_seen = False
        self.out: list[bytes] = []
        self._restart(1)

    def refuse(self, reason: str, line: int | None = None) -> BackupError:
        return BackupError(f"{self.name} {self.verdict}: line {line or self.line_no}: {reason}")

    def feed(self, chunk: bytes) -> bytes:
        data, pos = self.carry + chunk, 0
        while pos < len(data):
            if self.copy:
                pos = self._data(data, pos)
                if self.copy:
                    break
                continue
            end = data.find(b"\n", pos)
            if end < 0:
                break
            self._line(data[pos:end + 1])
            pos = end + 1
        self.carry = data[pos:]
        return self._take()

    def finish(self) -> bytes:
        last, self.carry = self.carry, b""
        if self.copy and not self.mid_line and last.rstrip(b"\r") == b"\\.":
            self.line_no += 1
            self.out.append(last)
            self.copy = False
        elif last and not self.copy:
            self._line(last)
        if self.copy:
            raise self.refuse("the last COPY's data does not end with a \\. line")
        if not self._idle():
            raise self.refuse("the script ends inside a quote, comment or statement (what "
                              "follows it would become part of it)")
        return self._take()

    def _idle(self) -> bool:
        return not (self.state or self.text or self.paren)

    def _take(self) -> bytes:
        if not self.copy:  # in COPY data everything before was checked when the COPY ended
            if not self._idle():
                return b""  # held back until its statement is complete and checked
            self._check_batch()
        out, self.out = b"".join(self.out), []
        return out

    def _data(self, data: bytes, pos: int) -> int:
        """Take COPY data from ``pos``: through its ``\\.`` line, or as far as ``data`` goes
        but for a partial line that may yet be that line; where the rest starts."""
        if self.mid_line:  # a \. here is not at the start of a line
            newline = data.find(b"\n", pos)
            self.mid_line = newline < 0
            pos = self._emit(data, pos, len(data) if newline < 0 else newline + 1)
            if self.mid_line:
                return pos
        found = COPY_END.search(data, pos)
        if found:
            pos = self._emit(data, pos, found.end())
            self.copy = False
            self._restart(self.line_no + 1)
            return pos
        pos = self._emit(data, pos, data.rfind(b"\n", pos) + 1)
        if pos < len(data) and data[pos:] not in END_PREFIXES:
            self.mid_line = True
            pos = self._emit(data, pos, len(data))
        return pos

    def _emit(self, data: bytes, start: int, stop: int) -> int:
        if stop > start:
            piece = data[start:stop]
            if b"\0" in piece:
                raise self.refuse("a NUL byte in COPY data")
            self.line_no += piece.count(b"\n")
            self.out.append(piece)
        return max(start, stop)

    def _restart(self, line: int) -> None:
        self.batch: list[str] = []
        self.batch_len = self.stmt_start = 0
        self.batch_line = self.stmt_line = line
        self._new_statement()

    def _line(self, raw: bytes) -> None:
        self.line_no += 1
        text = raw.decode("latin-1")
        if "\0" in text:  # psql stops reading a line at a NUL byte, the lexer would not
            raise self.refuse("a NUL byte outside COPY data")
        if self._idle():
            meta = RESTRICT.fullmatch(text)
            if meta:
                self._restrict(meta.group(1), meta.group(2))
                return
            if raw.rstrip(b"\r\n") in self.dropped:
                return
        self.out.append(raw)
        pos = 0
        while pos < len(text) and not self.copy:
            pos = self._lex(text, pos)
        self.sql_seen = self.sql_seen or self.text
        if not self.copy:
            self.batch.append(text)
            self.batch_len += len(text)
            if self.batch_len > BATCH and self._idle():
                self._check_batch()

    def _restrict(self, word: str, key: str) -> None:
        if word == "restrict" and self.key is None and not self.sql_seen:
            self.key = key
        elif word == "unrestrict" and key == self.key and not self.meta_done:
            self.meta_done = True
        else:
            raise self.refuse(f"psql meta-command \\{word} out of place (only pg_dump's own "
                              "\\restrict before the first statement and its \\unrestrict "
                              "after the last are allowed)")

    def _end_statement(self, text: str, end: int) -> None:
        self.sql_seen = True
        if self.meta_done:
            raise self.refuse("a statement after pg_dump's \\unrestrict line (it ends the "
                              "script: nothing but comments may follow it)")
        if self.first != "copy":
            self._new_statement()
            self.stmt_start = self.batch_len + end
            self.stmt_line = self.line_no + (0 if text[end:].strip() else 1)
            return
        if text[end:].strip():
            raise self.refuse("text after COPY ... FROM stdin on its line")
        whole = "".join(self.batch) + text[:end]
        before, statement, line = whole[:self.stmt_start], whole[self.stmt_start:], self.stmt_line
        self.batch, self.batch_len = [before], len(before)
        self._check_batch()
        try:
            check_copy(statement)
        except ScriptRefused as exc:
            raise self.refuse(str(exc), line) from None
        self.copy = True

    def _check_batch(self) -> None:
        text = "".join(self.batch)
        if text.strip():
            try:
                check_statements(text)
            except ScriptRefused as exc:
                raise self.refuse(str(exc), self.batch_line
                                  + text.count("\n", 0, exc.offset)) from None
        self._restart(self.line_no + 1)


def scan(name: str, chunks: Iterable[bytes], dropped: Iterable[bytes] = (),
         verdict: str = RESTORE_REFUSED) -> Generator[bytes, None, None]:
    """``chunks`` of a script as they may be passed to psql, each released after its check;
    a refusal says ``name``, ``verdict``, the line and why."""
    scanner = ScriptScanner(name, dropped, verdict)
    for chunk in chunks:
        out = scanner.feed(chunk)
        if out:
            yield out
    out = scanner.finish()
    if out:
        yield out
