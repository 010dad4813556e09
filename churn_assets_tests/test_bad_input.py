"""Bad landing files through the real raw assets: named precisely, nothing stored changes.

Every case follows one story: March lands and loads; April's file lands bad and its load fails,
naming the file, the line and the column; what March stored is unchanged; May's own file then
lands and loads. The landing folder receives files as they would arrive, one month at a time.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from churn_assets.landing.contract import LANDING_COLUMNS
from churn_assets.partitions import register_months
from churn_assets.raw.assets import labels, members, transactions, user_logs
from churn_assets_tests.helpers import resources_for

MARCH, APRIL, MAY, JUNE = "2016-03-01", "2016-04-01", "2016-05-01", "2016-06-01"
USERS = [f"user{i:02d}" for i in range(12)]
RAW_ASSETS = [transactions, user_logs, members, labels]
HEADERS = {table: ",".join(columns) for table, columns in LANDING_COLUMNS.items()}


def transaction_rows(month: int) -> list[str]:
    return [
        f"{user},41,30,149,149,1,2016{month:02d}{i + 1:02d},2016{month + 1:02d}{i + 1:02d},0"
        for i, user in enumerate(USERS)
    ]


def log_rows(month: int) -> list[str]:
    return [f"{user},2016{month:02d}{i + 1:02d},1,2,3,4,5,6,1234.5" for i, user in enumerate(USERS)]


def csv_text(table: str, rows: list[str]) -> str:
    return "\n".join([HEADERS[table], *rows]) + "\n"


class Landing:
    """A landing folder and a warehouse, with the raw assets run one month at a time."""

    def __init__(self, root: Path, instance: dg.DagsterInstance) -> None:
        self.folder = root / "landing"
        self.home = root / "home"
        self.instance = instance
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            members_rows = [f"{u},1,{20 + i},male,7,20150101" for i, u in enumerate(USERS)]
            self.put("members.csv", csv_text("members", members_rows))

    def put(self, name: str, content: str | bytes) -> Path:
        path = self.folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def land_month(self, month: int, transactions_file: bool = True) -> None:
        """A good month: its transactions, listening logs and cohort labels."""
        if transactions_file:
            rows = transaction_rows(month)
            self.put(f"transactions_2016{month:02d}.csv", csv_text("transactions", rows))
        self.put(f"user_logs_2016{month:02d}.csv", csv_text("user_logs", log_rows(month)))
        labels_rows = [f"{u},{i % 2}" for i, u in enumerate(USERS)]
        self.put(f"train_2016{month:02d}.csv", csv_text("labels", labels_rows))

    def load(self, month: str) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            RAW_ASSETS,
            partition_key=month,
            resources=resources_for(self.home, self.folder),
            instance=self.instance,
            raise_on_error=False,
        )

    def checksum(self, table: str, columns: str = "*") -> str:
        """Of every stored row of ``table`` (of its ``columns``)."""
        rows = self.rows(f"SELECT {columns} FROM {table} ORDER BY ALL")
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    def rows(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.home / "warehouse.duckdb"), read_only=True) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        register_months(instance, [MARCH, APRIL, MAY, JUNE])
        yield instance


@pytest.fixture(scope="module")
def march_loaded(tmp_path_factory: pytest.TempPathFactory, instance) -> Path:
    """A landing folder where March has landed, and the warehouse after its good load."""
    root = tmp_path_factory.mktemp("march")
    place = Landing(root, instance)
    place.land_month(3)
    result = place.load(MARCH)
    assert result.success, failures(result)
    assert place.rows("SELECT count(*) FROM transactions") == [(len(USERS),)]
    return root


@pytest.fixture
def landing(tmp_path: Path, instance, march_loaded: Path) -> Landing:
    """A private copy of the story so far: March landed and loaded."""
    shutil.copytree(march_loaded, tmp_path, dirs_exist_ok=True)
    return Landing(tmp_path, instance)


def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Each failed step's message: the Failure's description, else the error's."""
    found = {}
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        described = data.user_failure_data.description if data.user_failure_data else None
        found[event.step_key] = described or (data.error.message if data.error else "")
    return found


def checks(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        c.check_name: c
        for c in result.get_asset_check_evaluations()
        if c.asset_key == dg.AssetKey(asset)
    }


def metadata(check: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in check.metadata.items()}


# --- one bad April file per case ------------------------------------------------------------


def _replace_row(table: str, line: int, row: str) -> Callable[[Landing], tuple[Path, dict]]:
    """April's file of ``table`` with physical ``line`` (header = 1) replaced by ``row``."""

    def land(place: Landing) -> tuple[Path, dict]:
        rows = (transaction_rows if table == "transactions" else log_rows)(4)
        rows[line - 2] = row
        return place.put(f"{table}_201604.csv", csv_text(table, rows)), {"line": line}

    return land


def _truncated_gzip(place: Landing) -> tuple[Path, dict]:
    rows = [r for _ in range(200) for r in transaction_rows(4)]
    whole = gzip.compress(csv_text("transactions", rows).encode())
    cut = whole[: len(whole) // 2]
    complete = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(cut)) as handle:
            while chunk := handle.read1(1 << 16):
                complete += chunk.count(b"\n")
    except EOFError:
        pass
    path = place.put("transactions_201604.csv.gz", cut)
    return path, {"line": complete + 1, "words": ["truncated"]}


def _zero_bytes(place: Landing) -> tuple[Path, dict]:
    return place.put("transactions_201604.csv", b""), {"line": 1, "words": ["empty file"]}


def _latin1(place: Landing) -> tuple[Path, dict]:
    rows = transaction_rows(4)
    rows[4] = "us\xe9r,41,30,149,149,1,20160405,20160505,0"
    content = csv_text("transactions", rows).encode("latin-1")
    path = place.put("transactions_201604.csv", content)
    return path, {"line": 6, "column": "msno", "words": ["not UTF-8"]}


def _missing_columns(place: Landing) -> tuple[Path, dict]:
    header = HEADERS["transactions"].replace(",membership_expire_date,is_cancel", "")
    rows = [",".join(r.split(",")[:7]) for r in transaction_rows(4)]
    path = place.put("transactions_201604.csv", "\n".join([header, *rows]) + "\n")
    words = ["missing column(s) membership_expire_date, is_cancel"]
    return path, {"line": 1, "words": words}


def _mixed_line_ends(place: Landing) -> tuple[Path, dict]:
    rows = transaction_rows(4)
    text = HEADERS["transactions"] + "\r\n" + "\r\n".join(rows[:3]) + "\n" + "\n".join(rows[3:])
    path = place.put("transactions_201604.csv", text + "\n")
    return path, {"line": 4, "words": ["line ending"]}


BAD_APRIL = {
    "wrong-type": (
        "transactions",
        _replace_row("transactions", 4, "user02,41,30,abc,149,1,20160403,20160503,0"),
        {"column": "plan_list_price", "words": ['"abc" is not an integer']},
    ),
    "fraction": (
        "transactions",
        _replace_row("transactions", 9, "user07,41,30,149.5,149,1,20160408,20160508,0"),
        {"column": "plan_list_price", "words": ['"149.5" is not a whole number']},
    ),
    "row-cut-short": (
        "transactions",
        _replace_row("transactions", 7, "user05,41,30"),
        {"column": "plan_list_price", "words": ["3 of the header's 9 fields"]},
    ),
    "too-many-fields": (
        "transactions",
        _replace_row("transactions", 3, "user01,41,30,149,149,1,20160402,20160502,0,0"),
        {"words": ["10 fields where the header has 9"]},
    ),
    "unbalanced-quote": (
        "transactions",
        _replace_row("transactions", 5, 'user03,41,"30,149,149,1,20160404,20160504,0'),
        {"column": "payment_plan_days", "words": ["never closed"]},
    ),
    "iso-date": (
        "transactions",
        _replace_row("transactions", 6, "user04,41,30,149,149,1,2016-04-05,20160505,0"),
        {"column": "transaction_date", "words": ["dates must be YYYYMMDD integers"]},
    ),
    "day-first-date": (
        "transactions",
        _replace_row("transactions", 8, "user06,41,30,149,149,1,20160407,07/05/2016,0"),
        {"column": "membership_expire_date", "words": ['"07/05/2016" is not a YYYYMMDD date']},
    ),
    "logs-wrong-type": (
        "user_logs",
        _replace_row("user_logs", 10, "user08,20160409,1,2,3,4,5,6,lots"),
        {"column": "total_secs", "words": ['"lots" is not a number']},
    ),
    "truncated-gzip": ("transactions", _truncated_gzip, {}),
    "zero-byte-file": ("transactions", _zero_bytes, {}),
    "not-utf8": ("transactions", _latin1, {}),
    "missing-columns": ("transactions", _missing_columns, {}),
    "mixed-line-endings": ("transactions", _mixed_line_ends, {}),
}


@pytest.mark.parametrize("case", list(BAD_APRIL))
def test_bad_month_fails_naming_file_line_column_and_keeps_what_was_stored(landing, case):
    table, land_bad_file, expected = BAD_APRIL[case]
    stored = landing.checksum(table)

    landing.land_month(4, transactions_file=table != "transactions")
    path, found = land_bad_file(landing)
    expected = {**expected, **found}
    result = landing.load(APRIL)
    assert not result.success
    failed = failures(result)
    assert set(failed) == {table}, failed
    message = failed[table]
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    assert re.search(rf"\bline {expected['line']}\b", message), message
    if "column" in expected:
        assert f"column {expected['column']}:" in message, message
    assert all(word in message for word in expected.get("words", [])), message
    assert landing.checksum(table) == stored

    landing.land_month(5)
    later = landing.load(MAY)
    assert later.success, failures(later)
    day = "transaction_date" if table == "transactions" else "date"
    assert landing.rows(f"SELECT count(*) FROM {table} WHERE {day} >= DATE '{MAY}'") == [
        (len(USERS),)
    ]


def test_file_with_every_date_in_another_format_blocks_only_its_month(landing):
    landing.land_month(4, transactions_file=False)
    rows = [
        f"{u},41,30,149,149,1,2016-04-{i + 1:02d},2016-05-{i + 1:02d},0"
        for i, u in enumerate(USERS)
    ]
    path = landing.put("transactions_201604.csv", csv_text("transactions", rows))
    result = landing.load(APRIL)
    message = failures(result)["transactions"]
    assert message.startswith(f"{path}: line 2, column transaction_date: "), message
    landing.land_month(5)
    later = landing.load(MAY)
    assert later.success, failures(later)


# --- files that are odd but valid, and quirks that are flagged rather than refused ------------


def test_header_only_file_is_read_and_the_load_judges_the_empty_month(landing):
    stored = landing.checksum("transactions")
    landing.land_month(4, transactions_file=False)
    path = landing.put("transactions_201604.csv", HEADERS["transactions"] + "\n")
    result = landing.load(APRIL)
    assert not result.success
    message = failures(result)["transactions"]
    # Not a reader error: the load says the month's files hold no rows of it.
    assert path.name in message and "no valid rows" in message, message
    assert landing.checksum("transactions") == stored
    landing.land_month(5)
    assert landing.load(MAY).success


def test_bom_crlf_gzip_shuffled_and_extra_columns_load_the_same_rows(landing):
    landing.land_month(4, transactions_file=False)
    columns = list(LANDING_COLUMNS["transactions"])
    order = [*reversed(columns), "channel", "note"]
    lines = [",".join(order)]
    for row in transaction_rows(4):
        by_name = dict(zip(columns, row.split(","), strict=True))
        lines.append(",".join([*(by_name[c] for c in reversed(columns)), "web", '"a, b"']))
    content = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
    landing.put("transactions_201604.csv.gz", gzip.compress(content))
    result = landing.load(APRIL)
    assert result.success, failures(result)
    [materialization] = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["transactions"]
    ]
    ignored = materialization.materialization.metadata["extra_columns_ignored"].value
    assert ignored == ["channel", "note"]
    stored = landing.rows(
        "SELECT msno, plan_list_price, strftime(transaction_date, '%Y%m%d'), is_cancel "
        "FROM transactions WHERE transaction_date >= DATE '2016-04-01' ORDER BY msno"
    )
    expected = [(r.split(",")[0], 149, r.split(",")[6], 0) for r in transaction_rows(4)]
    assert stored == expected


def test_same_file_landed_twice_is_folded_and_counted(landing):
    before_rows = landing.checksum("transactions", "* EXCLUDE (source_file)")
    shutil.copy(
        landing.folder / "transactions_201603.csv", landing.folder / "transactions_201603_copy.csv"
    )
    shutil.copy(landing.folder / "user_logs_201603.csv", landing.folder / "user_logs_201603_v2.csv")
    result = landing.load(MARCH)
    assert result.success, failures(result)
    # The same rows; each kept once, from the copy's name (the file sorting last).
    assert landing.checksum("transactions", "* EXCLUDE (source_file)") == before_rows
    assert landing.rows(
        "SELECT DISTINCT source_file FROM transactions WHERE transaction_date < DATE '2016-04-01'"
    ) == [("transactions_201603_copy.csv",)]
    for table in ("transactions", "user_logs"):
        duplicates = metadata(checks(result, table)["duplicates"])
        assert duplicates["exact_duplicates_dropped"] == len(USERS)
        assert duplicates["key_duplicates"] == 0
    assert landing.rows("SELECT count(*) FROM user_logs") == [(len(USERS),)]


def test_labels_of_users_unknown_to_members_are_reported_by_a_check(landing):
    landing.land_month(4)
    ghosts = [f"ghost{i}" for i in range(4)]
    rows = [f"{u},{i % 2}" for i, u in enumerate(USERS + ghosts)]
    landing.put("train_201604.csv", csv_text("labels", rows))
    result = landing.load(APRIL)
    assert result.success, failures(result)
    referential = checks(result, "labels")["referential"]
    assert not referential.passed
    assert metadata(referential)["unknown_user_rows"] == len(ghosts)
    assert landing.rows("SELECT count(*) FROM labels WHERE msno LIKE 'ghost%'") == [(len(ghosts),)]


def test_impossible_ages_and_negative_prices_are_loaded_and_flagged(landing):
    ages = {"user00": -5, "user01": 0, "user02": 150}
    members_rows = [f"{u},1,{ages.get(u, 30)},male,7,20150101" for u in USERS]
    landing.put("members.csv", csv_text("members", members_rows))
    landing.land_month(4, transactions_file=False)
    rows = transaction_rows(4)
    rows[3] = rows[3].replace(",149,149,", ",-100,-100,")
    landing.put("transactions_201604.csv", csv_text("transactions", rows))
    result = landing.load(APRIL)
    assert result.success, failures(result)
    member_ranges = metadata(checks(result, "members")["ranges"])
    assert member_ranges["invalid_bd_rows"] == len(ages)
    price_ranges = checks(result, "transactions")["ranges"]
    assert metadata(price_ranges)["absurd_prices_rows"] == 1
    assert not price_ranges.passed  # one row in twelve is far beyond the tolerated share
    assert landing.rows("SELECT bd FROM members WHERE bd <= 0 OR bd > 100 ORDER BY bd") == [
        (-5,),
        (0,),
        (150,),
    ]
    assert landing.rows("SELECT count(*) FROM transactions WHERE plan_list_price < 0") == [(1,)]


def test_month_without_any_file_fails_saying_so(landing):
    stored = {t: landing.checksum(t) for t in ("transactions", "user_logs")}
    result = landing.load(JUNE)
    assert not result.success
    failed = failures(result)
    for table in ("transactions", "user_logs"):
        assert f"no {table} file" in failed[table] and "2016-06" in failed[table], failed
        assert landing.checksum(table) == stored[table]


def test_bad_members_file_fails_members_only_and_keeps_the_stored_members(landing):
    stored = landing.checksum("members")
    landing.land_month(4)
    header = HEADERS["members"]
    path = landing.put(
        "members_201604.csv", f"{header}\nuser00,1,30,male,7,20150101\nuser01,1,x,,7,20150101\n"
    )
    result = landing.load(APRIL)
    failed = failures(result)
    assert set(failed) == {"members"}, failed
    assert failed["members"].startswith(f"{path}: line 3, column bd: "), failed
    assert landing.checksum("members") == stored
    assert landing.rows(
        "SELECT count(*) FROM transactions WHERE transaction_date >= DATE '2016-04-01'"
    ) == [(len(USERS),)]
