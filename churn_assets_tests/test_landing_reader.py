"""The landing reader on its own: good files read back exactly, bad ones are named precisely.

Files are read the way a load reads them (``inspect_file``, then DuckDB over ``source_sql``, its
errors through ``describe_load_error``). Every refusal is one line that starts with the file's
path and names the line (the header being line 1) and, where there is one, the column.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from churn_assets.landing.contract import DATE_COLUMNS, LANDING_COLUMNS, LandingFormatError
from churn_assets.landing.errors import describe_load_error
from churn_assets.landing.header import inspect_file
from churn_assets.landing.reader import source_sql

TX = list(LANDING_COLUMNS["transactions"])
TX_HEADER = ",".join(TX)
GOOD = "u1,41,30,149,149,1,20160205,20160306,0"
GOOD_ROW = ("u1", 41, 30, 149, 149, 1, 20160205, 20160306, 0)


@pytest.fixture(autouse=True)
def definitions_still_load() -> None:
    """These tests open no Dagster instance: the suite's after-test Definitions probe is moot."""


def read(path: Path, table: str = "transactions") -> list[tuple]:
    """The rows of one file in contract column order, as a load would read them."""
    with duckdb.connect() as conn:
        landing = inspect_file(conn, path, table)
        conn.execute(f"CREATE TEMP VIEW landing_source AS {source_sql([landing], table)}")
        try:
            return conn.execute("SELECT * EXCLUDE (source_file) FROM landing_source").fetchall()
        except duckdb.Error as exc:
            raise describe_load_error(exc, table) from exc


def write(folder: Path, name: str, content: str | bytes) -> Path:
    data = content.encode() if isinstance(content, str) else content
    path = folder / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def refusal(path: Path, table: str = "transactions") -> str:
    with pytest.raises(LandingFormatError) as caught:
        read(path, table)
    return str(caught.value)


def assert_names(message: str, path: Path, line: int | None, column: str | None = None) -> None:
    """One line, starting with the file, naming the exact line and the column."""
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    if line is not None:
        assert re.search(rf"\bline {line}\b", message), message
    if column is not None:
        assert f"column {column}:" in message, message


def rows(*lines: str, header: str = TX_HEADER, end: str = "\n") -> str:
    return end.join([header, *lines]) + end


# --- malformed, cut-short and truncated rows ------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "column", "words"),
    [
        pytest.param("u2,41,30,149", "actual_amount_paid", "4 of the header's 9", id="short"),
        pytest.param(GOOD + ",9", None, "10 fields where the header has 9", id="long"),
        pytest.param(
            'u2,41,"30,149,149,1,20160205,20160306,0',
            "payment_plan_days",
            "never closed",
            id="unbalanced-quote",
        ),
        pytest.param(
            '"u2"x,41,30,149,149,1,20160205,20160306,0',
            "msno",
            "follows a closing quote",
            id="text-after-quote",
        ),
    ],
)
@pytest.mark.parametrize("name", ["transactions_bad.csv", "transactions_bad.csv.gz"])
def test_malformed_row_is_named(tmp_path, name, bad, column, words):
    path = write(tmp_path, name, rows(GOOD, GOOD, bad, GOOD))
    message = refusal(path)
    assert_names(message, path, 4, column)
    assert words in message and "expected" in message


def test_last_row_cut_short_without_line_end(tmp_path):
    path = write(tmp_path, "transactions.csv", rows(GOOD, GOOD).rstrip() + "\nu2,41,30,14")
    assert_names(refusal(path), path, 4, "actual_amount_paid")


def test_truncated_gzip_names_the_line_where_it_ends(tmp_path):
    body = rows(*[GOOD] * 20_000).encode()
    whole = gzip.compress(body)
    path = tmp_path / "transactions_201603.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with gzip.open(path) as handle, pytest.raises(EOFError):
        complete = 0
        while chunk := handle.read1(1 << 16):
            complete += chunk.count(b"\n")
    message = refusal(path)
    assert_names(message, path, complete + 1)
    assert "truncated" in message and f"after line {complete}" in message


def test_gzip_truncated_inside_the_header(tmp_path):
    path = tmp_path / "transactions.csv.gz"
    path.write_bytes(gzip.compress(rows(GOOD).encode())[:15])
    message = refusal(path)
    assert_names(message, path, 1)
    assert "truncated" in message


def test_corrupt_gzip_is_named(tmp_path):
    whole = bytearray(gzip.compress(rows(*[GOOD] * 20_000).encode()))
    whole[len(whole) // 3] ^= 0xFF
    path = tmp_path / "transactions.csv.gz"
    path.write_bytes(bytes(whole))
    message = refusal(path)
    assert_names(message, path, None)
    assert "gzip" in message and "corrupt" in message


def test_gz_name_without_gzip_data(tmp_path):
    path = tmp_path / "transactions.csv.gz"
    path.write_bytes(rows(GOOD).encode())
    message = refusal(path)
    assert_names(message, path, 1)
    assert "not gzip data" in message


# --- empty and header-only files ------------------------------------------------------------


def test_zero_byte_file(tmp_path):
    path = write(tmp_path, "transactions.csv", b"")
    message = refusal(path)
    assert_names(message, path, 1)
    assert "empty file (0 bytes)" in message and "msno" in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("transactions.csv.gz", b""),
        ("transactions.csv", b"\n" + rows(GOOD).encode()),
        ("transactions.csv", b"\xef\xbb\xbf"),
    ],
    ids=["empty-gzip", "blank-first-line", "bom-only"],
)
def test_no_header_line(tmp_path, name, content):
    path = write(tmp_path, name, content)
    message = refusal(path)
    assert_names(message, path, 1)
    assert "no header line" in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("transactions.csv", TX_HEADER + "\n"),
        ("transactions.csv", TX_HEADER),
        ("transactions.csv.gz", TX_HEADER + "\r\n"),
        ("transactions.csv", "\ufeff" + TX_HEADER + "\n"),
    ],
    ids=["lf", "no-line-end", "gzip-crlf", "bom"],
)
def test_header_only_file_is_valid_and_empty(tmp_path, name, content):
    assert read(write(tmp_path, name, content)) == []


# --- byte-order mark, line endings, encodings -----------------------------------------------


@pytest.mark.parametrize("name", ["transactions.csv", "transactions.csv.gz"])
def test_bom_is_accepted_in_header_and_data_read(tmp_path, name):
    path = write(tmp_path, name, "\ufeff" + rows(GOOD, "u2,41,30,99,99,0,20160206,20160307,1"))
    assert read(path) == [GOOD_ROW, ("u2", 41, 30, 99, 99, 0, 20160206, 20160307, 1)]
    bad = write(tmp_path, "bad_" + name, "\ufeff" + rows(GOOD, "u2,41,30,abc,99,0,2,3,1"))
    assert_names(refusal(bad), bad, 3, "plan_list_price")


def test_bom_with_msno_first_is_not_a_missing_column(tmp_path):
    header = "msno,city,bd,gender,registered_via,registration_init_time"
    path = write(tmp_path, "members.csv", "\ufeff" + rows("u1,1,20,male,7,20150101", header=header))
    assert read(path, "members") == [("u1", 1, 20, "male", 7, 20150101)]


@pytest.mark.parametrize("end", ["\r\n", "\r"], ids=["crlf", "bare-cr"])
def test_crlf_and_cr_line_ends_are_accepted_and_counted(tmp_path, end):
    path = write(tmp_path, "transactions.csv", rows(GOOD, GOOD, end=end))
    assert read(path) == [GOOD_ROW, GOOD_ROW]
    bad = write(tmp_path, "bad.csv", rows(GOOD, GOOD, "u2,41,30,abc,1,1,2,3,0", end=end))
    assert_names(refusal(bad), bad, 4, "plan_list_price")


def test_mixed_line_endings_are_named(tmp_path):
    path = write(tmp_path, "transactions.csv", f"{TX_HEADER}\r\n{GOOD}\r\n{GOOD}\n{GOOD}\r\n")
    message = refusal(path)
    assert_names(message, path, 3)
    assert "line ending" in message


def test_non_utf8_bytes_are_named_with_line_and_column(tmp_path):
    content = rows(GOOD).encode() + "u\xe92,41,30,149,149,1,20160205,20160306,0\n".encode("latin-1")
    path = write(tmp_path, "transactions.csv", content)
    message = refusal(path)
    assert_names(message, path, 3, "msno")
    assert "not UTF-8" in message


def test_non_utf8_header_is_named(tmp_path):
    path = write(tmp_path, "transactions.csv", (TX_HEADER + ",caf\xe9\n").encode("latin-1"))
    message = refusal(path)
    assert_names(message, path, 1)
    assert "not UTF-8" in message


def test_utf8_text_is_read_as_is(tmp_path):
    path = write(tmp_path, "transactions.csv", rows('"ü,é 名",41,30,149,149,1,20160205,20160306,0'))
    assert read(path)[0][0] == "ü,é 名"


# --- dates, columns and types ---------------------------------------------------------------

MEMBERS_HEADER = ",".join(LANDING_COLUMNS["members"])
LOGS_HEADER = ",".join(LANDING_COLUMNS["user_logs"])


@pytest.mark.parametrize("written", ["2016-03-01", "01/03/2016", "20160301.5", "1 March"])
@pytest.mark.parametrize(
    ("table", "header", "template", "column"),
    [
        ("transactions", TX_HEADER, "u2,41,30,1,1,1,{},20160306,0", "transaction_date"),
        ("transactions", TX_HEADER, "u2,41,30,1,1,1,20160205,{},0", "membership_expire_date"),
        ("user_logs", LOGS_HEADER, "u2,{},1,1,1,1,1,1,12.5", "date"),
        ("members", MEMBERS_HEADER, "u2,1,20,male,7,{}", "registration_init_time"),
    ],
)
def test_date_not_yyyymmdd_is_named(tmp_path, written, table, header, template, column):
    good = template.format("20160301")
    path = write(tmp_path, f"{table}.csv", rows(good, template.format(written), header=header))
    message = refusal(path, table)
    assert_names(message, path, 3, column)
    assert f'"{written}"' in message and "dates must be YYYYMMDD integers" in message


def test_missing_columns_are_listed(tmp_path):
    path = write(tmp_path, "transactions.csv", "msno,payment_method_id,transaction_date\nu,41,2\n")
    message = refusal(path)
    assert_names(message, path, 1)
    missing = set(TX) - {"msno", "payment_method_id", "transaction_date"}
    listed = re.search(r"missing column\(s\) ([^;]+) for", message).group(1).split(", ")
    assert set(listed) == missing


def test_extra_columns_and_any_order_are_accepted(tmp_path):
    header = "is_cancel,note,msno,transaction_date,payment_method_id,payment_plan_days,"
    header += "plan_list_price,actual_amount_paid,is_auto_renew,membership_expire_date,note,"
    path = write(
        tmp_path,
        "transactions.csv",
        rows("0,hi,u1,20160205,41,30,149,149,1,20160306,x,y", header=header),
    )
    with duckdb.connect() as conn:
        columns = inspect_file(conn, path, "transactions").columns
    assert columns[-2:] == ("note_2", "unnamed_12")
    assert read(path) == [GOOD_ROW]


def test_contract_column_named_twice_is_refused(tmp_path):
    path = write(tmp_path, "transactions.csv", rows(GOOD + ",u9", header=TX_HEADER + ",msno"))
    message = refusal(path)
    assert_names(message, path, 1, "msno")
    assert "named twice" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("abc", "is not an integer"),
        ("149.5", "is not a whole number"),
        ("99999999999", "is beyond the INTEGER range"),
        ("0x10", "is not an integer"),
        ("inf", "is not a finite number"),
    ],
)
def test_wrong_type_names_line_column_and_value(tmp_path, value, words):
    bad = f"u2,41,30,{value},149,1,20160205,20160306,0"
    path = write(tmp_path, "transactions.csv", rows(GOOD, GOOD, bad, GOOD))
    message = refusal(path)
    assert_names(message, path, 4, "plan_list_price")
    assert f'"{value}" {words}' in message


def test_text_in_a_decimal_column(tmp_path):
    path = write(
        tmp_path,
        "user_logs.csv",
        rows("u,20160301,1,1,1,1,1,1,1.5", "u,20160302,1,1,1,1,1,1,lots", header=LOGS_HEADER),
    )
    message = refusal(path, "user_logs")
    assert_names(message, path, 3, "total_secs")
    assert '"lots" is not a number' in message


def test_integers_written_as_whole_decimals_and_empty_fields_are_accepted(tmp_path):
    path = write(tmp_path, "transactions.csv", rows("u1,41.0,30,,149,1,20160205.0,,0"))
    assert read(path) == [("u1", 41, 30, None, 149, 1, 20160205, None, 0)]


def test_empty_key_refused_by_the_warehouse_table_is_traced_to_its_line(tmp_path):
    """A NOT NULL column of the table the rows go to fails after the read; the row is found."""
    path = write(tmp_path, "transactions.csv", rows(GOOD, GOOD, ",41,30,1,1,1,20160205,2,0"))
    with duckdb.connect() as conn:
        landing = inspect_file(conn, path, "transactions")
        conn.execute(f"CREATE TEMP VIEW landing_source AS {source_sql([landing], 'transactions')}")
        conn.execute("CREATE TABLE stored (msno VARCHAR NOT NULL)")
        with pytest.raises(duckdb.ConstraintException) as caught:
            conn.execute("INSERT INTO stored SELECT msno FROM landing_source")
    message = str(describe_load_error(caught.value, "transactions"))
    assert_names(message, path, 4, "msno")
    assert "empty value" in message


# --- line numbers: verified against the file ------------------------------------------------


def test_line_numbers_count_physical_lines_across_quoted_line_breaks(tmp_path):
    spanning = '"u\n\n1",41,30,149,149,1,20160205,20160306,0'  # one record on lines 2-4
    for bad, column in [("u2,41", "payment_plan_days"), ("u2,41,30,abc,1,1,2,3,0", None)]:
        path = write(tmp_path, "transactions.csv", rows(spanning, "", GOOD, bad))
        assert_names(refusal(path), path, 7, column)
    fraction = write(tmp_path, "t.csv", rows(spanning, GOOD, "u2,41,30,1.5,1,1,2,3,0"))
    assert_names(refusal(fraction), fraction, 6, "plan_list_price")


@pytest.mark.parametrize("name", ["transactions.csv", "transactions.csv.gz"])
@pytest.mark.parametrize("value", ["abc", "1.5"])
def test_line_numbers_deep_into_a_large_file(tmp_path, name, value):
    """DuckDB reads large files in parallel buffers; its line numbers still hold."""
    body = [f"user{i:07d},41,30,149,149,1,20160205,20160306,0" for i in range(150_000)]
    body[123_455] = f"user,41,30,{value},149,1,20160205,20160306,0"  # line 123457
    path = write(tmp_path, name, rows(*body))
    assert_names(refusal(path), path, 123_457, "plan_list_price")


def test_parquet_value_names_its_row(tmp_path):
    path = tmp_path / "transactions.parquet"
    with duckdb.connect() as conn:
        conn.execute(
            "COPY (SELECT 'u' || i AS msno, 41 AS payment_method_id, 30 AS payment_plan_days, "
            "CASE WHEN i = 3 THEN 149.5 ELSE 149 END AS plan_list_price, 149 AS "
            "actual_amount_paid, 1 AS is_auto_renew, 20160205 AS transaction_date, 20160306 "
            "AS membership_expire_date, 0 AS is_cancel FROM range(1, 6) t(i)) "
            f"TO '{path}' (FORMAT parquet)"
        )
    message = refusal(path)
    assert message.startswith(f"{path}: row 3, column plan_list_price: ")
    assert '"149.5"' in message


# --- properties -------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from(',"; '),
    min_size=1,
    max_size=8,
)
INT32 = st.integers(-(2**31), 2**31 - 1)
YYYYMMDD = st.dates(date(2004, 1, 1), date(2030, 12, 31)).map(lambda d: int(f"{d:%Y%m%d}"))
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)


def value_strategy(table: str, column: str) -> st.SearchStrategy:
    kind = LANDING_COLUMNS[table][column]
    if column == "msno":
        return TEXT.filter(lambda s: s.strip() != "" or s == " ")
    base = {"VARCHAR": TEXT, "DOUBLE": FINITE}.get(
        kind, YYYYMMDD if column in DATE_COLUMNS else INT32
    )
    return st.none() | base


@st.composite
def landing_files(draw, min_rows: int = 0) -> dict:
    """A table of rows and the many ways the same rows may be written to a landing file."""
    table = draw(st.sampled_from(["transactions", "user_logs", "members"]))
    contract = list(LANDING_COLUMNS[table])
    records = draw(
        st.lists(
            st.tuples(*[value_strategy(table, c) for c in contract]), min_size=min_rows, max_size=12
        )
    )
    extras = draw(st.lists(st.sampled_from(["note", "source", "v2_flag"]), max_size=2, unique=True))
    order = draw(st.permutations(contract + extras))
    return {
        "table": table,
        "records": records,
        "extras": extras,
        "order": order,
        "bom": draw(st.booleans()),
        "end": draw(st.sampled_from(["\n", "\r\n"])),
        "gz": draw(st.booleans()),
        "whole_decimals": draw(st.booleans()),
        "extra_value": draw(TEXT),
    }


def render(value, kind: str, whole_decimals: bool) -> str:
    if value is None:
        return ""
    if kind == "DOUBLE":
        return repr(float(value))
    if kind == "INTEGER":
        return f"{value}.0" if whole_decimals else str(value)
    return value


def csv_line(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    line = buffer.getvalue()
    # csv quotes an empty single field as "" (a NULL to DuckDB as well): keep it plain
    return line


def file_lines(spec: dict) -> list[list[str]]:
    """Header then rows as lists of field texts, in the file's column order."""
    kinds = LANDING_COLUMNS[spec["table"]]
    contract = list(kinds)
    out = [list(spec["order"])]
    for record in spec["records"]:
        by_name = dict(zip(contract, record, strict=True))
        out.append(
            [
                render(by_name[c], kinds[c], spec["whole_decimals"])
                if c in kinds
                else spec["extra_value"]
                for c in spec["order"]
            ]
        )
    return out


def write_spec(folder: Path, spec: dict, lines: list[str]) -> Path:
    text = ("\ufeff" if spec["bom"] else "") + spec["end"].join(lines) + spec["end"]
    suffix = ".csv.gz" if spec["gz"] else ".csv"
    return write(folder, f"{spec['table']}_landed{suffix}", text)


def expected(spec: dict) -> list[tuple]:
    kinds = LANDING_COLUMNS[spec["table"]]
    return [
        tuple(
            float(v) if v is not None and kinds[c] == "DOUBLE" else v
            for c, v in zip(kinds, record, strict=True)
        )
        for record in spec["records"]
    ]


@PROPERTY_SETTINGS
@given(spec=landing_files())
def test_any_valid_file_reads_back_the_same_values(spec):
    with tempfile.TemporaryDirectory() as folder:
        lines = [csv_line(fields) for fields in file_lines(spec)]
        path = write_spec(Path(folder), spec, lines)
        assert sorted(read(path, spec["table"]), key=repr) == sorted(expected(spec), key=repr)


CORRUPTIONS = ("garbage", "cut_short", "iso_date")


@PROPERTY_SETTINGS
@given(
    spec=landing_files(min_rows=1),
    corruption=st.sampled_from(CORRUPTIONS),
    garbage=st.text(st.characters(categories=("L",)), min_size=1, max_size=6),
    data=st.data(),
)
def test_any_single_corruption_is_named_with_its_line(spec, corruption, garbage, data):
    kinds = LANDING_COLUMNS[spec["table"]]
    lines = file_lines(spec)
    row = data.draw(st.integers(1, len(lines) - 1), label="row")
    fields = lines[row]
    order = spec["order"]
    column = None
    if corruption == "garbage":
        numeric = [i for i, c in enumerate(order) if kinds.get(c, "VARCHAR") != "VARCHAR"]
        assume(garbage.lower() not in {"nan", "inf", "infinity", "e"})
        position = data.draw(st.sampled_from(numeric), label="field")
        fields[position], column = garbage, order[position]
    elif corruption == "iso_date":
        dated = [i for i, c in enumerate(order) if c in DATE_COLUMNS]
        assume(dated)
        position = data.draw(st.sampled_from(dated), label="field")
        day = data.draw(st.dates(date(2004, 1, 1), date(2030, 12, 31)), label="date")
        fields[position], column = day.isoformat(), order[position]
    texts = [csv_line(f) for f in lines]
    if corruption == "cut_short":
        keep = data.draw(st.integers(1, len(fields) - 1), label="fields kept")
        texts[row] = csv_line(fields[:keep])
        column = order[keep]
    with tempfile.TemporaryDirectory() as folder:
        path = write_spec(Path(folder), spec, texts)
        with pytest.raises(LandingFormatError) as caught:
            read(path, spec["table"])
    message = str(caught.value)
    assert path.name in message
    assert_names(message, path, row + 1, column)
    if corruption == "iso_date":
        assert "dates must be YYYYMMDD integers" in message
