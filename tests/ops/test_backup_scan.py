"""How a restore reads its script: independent of the settings a statement can change at run
time (standard_conforming_strings, client_encoding, psql's own variables), COPY data streamed,
pg_dump's \\restrict and \\unrestrict only where pg_dump writes them."""

from __future__ import annotations

import pytest

from shared_db.errors import BackupError
from shared_db.ops.restore_lexer import PsqlLexer
from shared_db.ops.restore_script import scan

CHUNK = 1 << 20

# Each would make psql end a string elsewhere than the scanner once a statement changes a
# setting at run time, so the COMMIT after it would run.
HIDDEN_COMMITS = [
    (b"SELECT set_config('standard_' || 'conforming_strings', 'off', false); "
     b"SELECT 'a\\'' AS x; COMMIT; -- ';\n", "line 1", "odd number of backslashes"),
    (b"SELECT set_config('client_' || 'encoding','SJIS',false);\n"
     b"SELECT E'\x81\\'; COMMIT; --';\n", "line 2", "right before a backslash"),
    (b"SELECT 1;\nSELECT '\x81\\\\'; COMMIT; --';\n", "line 2", "right before a backslash"),
    (b"SELECT 1;\n-- \x81\nSELECT '\n; COMMIT; --';\n", "line 2", "line comment ending"),
    (b"SELECT (ARRAY[1])[1:DBNAME];\n", "line 1", ":DBNAME outside quotes"),
]


@pytest.mark.parametrize(("script", "line", "rule"), HIDDEN_COMMITS)
def test_quoting_that_depends_on_run_time_settings_is_refused(script: bytes, line: str,
                                                              rule: str) -> None:
    with pytest.raises(BackupError, match="refused, nothing was restored") as caught:
        list(scan("f.sql.gz", [script]))
    assert f"{line}: " in str(caught.value) and rule in str(caught.value)


@pytest.mark.parametrize("script", [
    b"SELECT 'C:\\path', '\\\\', E'\\'', 'it''s', E'caf\xc3\xa9 \\n', '\\\\''';\n",
    b"SELECT (ARRAY[1, 2])[1:n], 1::int, make_interval(days := 1) FROM (SELECT 2 AS n) s;\n",
    b"-- caf\xc3\xa9 ok\nSELECT 'caf\xc3\xa9', \"caf\xc3\xa9\\\";\n",
    b"CREATE FUNCTION enc() RETURNS text LANGUAGE sql BEGIN ATOMIC "
    b"SELECT current_setting('client_encoding'); END;\n",
    b"SELECT set_config('standard_conforming_strings', 'on', false);\n",
])
def test_quoting_that_reads_the_same_under_any_setting_passes(script: bytes) -> None:
    assert b"".join(scan("f", [script])) == script


@pytest.mark.parametrize(("script", "reason"), [
    (b"COPY public.t (a) FROM stdin WITH (FORMAT binary);\n\\.\n", "binary format"),
    (b"COPY public.t (a) FROM stdin BINARY;\n\\.\n", "binary format"),
    (b"SELECT 1;\n\\restrict k\n\\unrestrict k\n", "\\restrict out of place"),
    (b"\\restrict k\nSELECT 1;\n\\unrestrict k\nSELECT 2;\n", "after pg_dump's \\unrestrict"),
    (b"\\restrict k\n\\unrestrict k\n\\restrict k\n", "out of place"),
    (b"SET client_encoding = 'SJIS';\n", "client_encoding other than pg_dump's own"),
    (b"SET standard_conforming_strings TO DEFAULT;\n", "standard_conforming_strings"),
])
def test_what_pg_dump_never_writes_is_refused(script: bytes, reason: str) -> None:
    with pytest.raises(BackupError, match="refused") as caught:
        list(scan("f", [script]))
    assert reason in str(caught.value)


def test_restrict_before_any_statement_and_unrestrict_after_the_last_pass() -> None:
    script = (b"--\n-- dump\n--\n\n\\restrict k1\n\nSET x = 1;\nCOPY public.t (a) FROM stdin;\n"
              b"1\n\\.\n\n--\n-- done\n--\n\n\\unrestrict k1\n\n")
    assert b"".join(scan("f", [script])) == script.replace(b"\\restrict k1\n", b"").replace(
        b"\\unrestrict k1\n", b"")


@pytest.mark.parametrize("line", [b"x" * 99 + b"\n", b"y" * (5 * CHUNK) + b"\n"])
def test_copy_data_streams_instead_of_filling_memory(line: bytes) -> None:
    rows = b"".join([line] * max(1, (60 * CHUNK) // len(line)))
    data = b"SET x = 1;\nCOPY public.t (a) FROM stdin;\n" + rows + b"\\.\nSELECT 1;\n"
    out = list(scan("f", (data[i:i + CHUNK] for i in range(0, len(data), CHUNK))))
    assert max(map(len, out)) <= 2 * CHUNK
    assert b"".join(out) == data


def test_the_end_of_copy_data_is_found_across_any_chunk_boundary() -> None:
    data = b"COPY public.t (a) FROM stdin;\nab\\.\nxyz\\.\n\\.\r\nSELECT 1;\n"
    for cut in range(1, len(data)):
        assert b"".join(scan("f", [data[:cut], data[cut:]])) == data, cut
    with pytest.raises(BackupError, match="does not end with a"):
        list(scan("f", [b"COPY public.t (a) FROM stdin;\nx", b"\\.\n"]))


def test_the_lexer_is_abstract() -> None:
    with pytest.raises(TypeError):
        PsqlLexer()  # type: ignore[abstract]
