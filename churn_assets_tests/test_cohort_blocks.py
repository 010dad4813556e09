"""Reading a cohort block by block for scoring: the same values as the whole-matrix read, any
block size, all rows or a chosen few, and a capacity ranking that breaks ties by msno whatever
order the table holds the users in."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churn_assets.features.feature_sets import cohort_blocks, read_cohort_matrix
from churn_assets.scoring.buckets import capacity_buckets

COHORT = date(2016, 5, 1)
COLUMNS = ["plays_7d", "city", "last_is_auto_renew"]


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    rng = np.random.default_rng(3)
    users = 1_000
    frame = pd.DataFrame(
        {
            "msno": [f"u{i:04d}" for i in rng.permutation(users)],  # stored out of msno order
            "cohort_month": COHORT,
            "plays_7d": np.where(rng.random(users) < 0.1, np.nan, rng.normal(size=users)),
            "city": rng.choice(["1", "13", "x", None], size=users),  # text codes, as stored
            "last_is_auto_renew": rng.random(users) < 0.8,
        }
    )
    connection = duckdb.connect()
    connection.register("frame", frame)
    connection.execute("CREATE TABLE features AS SELECT * FROM frame")
    connection.execute(
        "INSERT INTO features SELECT 'other' || msno, DATE '2016-06-01', plays_7d, city, "
        "last_is_auto_renew FROM frame"
    )
    return connection


def _by_msno(blocks) -> pd.DataFrame:
    """Blocks copied out as they come (each block's buffer is reused), indexed by msno."""
    return pd.concat(
        pd.DataFrame(b.values.copy(), index=b.msno.to_pylist(), columns=COLUMNS) for b in blocks
    )


@pytest.mark.parametrize("block_rows", [1, 7, 64, 5_000])
def test_blocks_hold_the_values_the_whole_matrix_read_holds(conn, block_rows: int) -> None:
    msno, matrix = read_cohort_matrix(conn, COHORT, COLUMNS)
    expected = pd.DataFrame(matrix, index=msno.to_pylist(), columns=COLUMNS)
    read = _by_msno(cohort_blocks(conn, COHORT, COLUMNS, block_rows=block_rows))
    assert len(read) == 1_000 and read.index.is_unique
    pd.testing.assert_frame_equal(read.loc[expected.index], expected)


def test_chosen_rowids_read_only_those_rows(conn) -> None:
    everyone = list(cohort_blocks(conn, COHORT, ["plays_7d"], block_rows=10_000))
    rowid = everyone[0].rowid
    chosen = rowid[::37]
    read = list(cohort_blocks(conn, COHORT, COLUMNS, rowids=chosen, block_rows=9))
    assert sorted(np.concatenate([b.rowid for b in read]).tolist()) == sorted(chosen.tolist())
    names = set(everyone[0].msno.to_numpy(zero_copy_only=False)[::37])
    assert set(_by_msno(read).index) == names
    assert not [n for (n,) in conn.execute("SHOW TABLES").fetchall() if n.startswith("wanted")]


def test_a_missing_column_is_named_before_any_block_and_an_empty_cohort_has_none(conn) -> None:
    with pytest.raises(KeyError, match="secs_30d"):
        cohort_blocks(conn, COHORT, ["plays_7d", "secs_30d"])
    assert list(cohort_blocks(conn, date(2017, 1, 1), ["plays_7d", "secs_30d"])) == []


def test_leaving_early_stops_the_reader(conn) -> None:
    blocks = cohort_blocks(conn, COHORT, COLUMNS, block_rows=10)
    first = next(blocks)
    assert len(first.rowid) == 10
    blocks.close()  # the reader thread is told to stop and joined
    assert conn.execute("SELECT count(*) FROM features").fetchall() == [(2_000,)]


def test_capacity_ties_go_to_the_lowest_msno_whatever_the_stored_order() -> None:
    msno = pa.chunked_array([["u3", "u1", "u4", "u2"]])
    probability = np.array([0.5, 0.5, 0.9, 0.5])
    control = np.zeros(4, dtype=bool)
    rank = np.argsort(np.argsort(msno.to_numpy()))
    buckets, _ = capacity_buckets(probability, control, calls=2, b_min=0.1, tie_break=rank)
    assert buckets.tolist() == ["B", "A", "A", "B"]  # u4 (0.9), then u1 of the three tied
