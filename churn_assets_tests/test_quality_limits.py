"""The raw quality checks' limits, to the row: a share at its limit passes, one row more fails;
the volume check compares a month with the months just before it, not with older ones."""

from __future__ import annotations

from datetime import date

import pytest

from churn_assets.raw.quality import (
    MAX_INVALID_KEY_SHARE,
    MAX_KEY_DUPLICATE_SHARE,
    MAX_NULL_SHARE,
    MAX_UNKNOWN_USER_SHARE,
    RANGE_LIMITS,
    VolumeBand,
    evaluate,
    volume_outcome,
)

ROWS = 10_000


def _clean() -> dict:
    return {
        "rows": ROWS,
        "invalid_key_rows": 0,
        "null_total_secs": 0,
        "null_num_100": 0,
        "null_num_unq": 0,
        **{f"range_{name}": 0 for name in RANGE_LIMITS["user_logs"]},
        "exact_duplicates": 0,
        "key_duplicates": 0,
        "unknown_user_rows": 0,
    }


def _outcomes(**counts) -> dict:
    found = evaluate(
        "user_logs",
        _clean() | counts,
        "2016-02",
        extra_columns=[],
        members_loaded=True,
    )
    return {o.check: o for o in found}


def _at(share: float) -> int:
    return round(share * ROWS)


def test_a_clean_month_passes_every_check():
    assert all(o.passed for o in _outcomes().values())


@pytest.mark.parametrize(
    "check, key, limit",
    [
        ("nulls", "null_total_secs", MAX_NULL_SHARE),
        ("duplicates", "key_duplicates", MAX_KEY_DUPLICATE_SHARE),
        ("referential", "unknown_user_rows", MAX_UNKNOWN_USER_SHARE),
        ("schema", "invalid_key_rows", MAX_INVALID_KEY_SHARE),
        (
            "ranges",
            "range_negative_total_secs",
            RANGE_LIMITS["user_logs"]["negative_total_secs"],
        ),
        ("ranges", "range_unique_above_plays", RANGE_LIMITS["user_logs"]["unique_above_plays"]),
    ],
)
def test_a_share_at_its_limit_passes_and_one_row_more_fails(check, key, limit):
    assert _outcomes(**{key: _at(limit)})[check].passed
    assert not _outcomes(**{key: _at(limit) + 1})[check].passed


def test_unparseable_keys_beyond_their_limit_block_the_load():
    at_limit = _outcomes(invalid_key_rows=_at(MAX_INVALID_KEY_SHARE))["schema"]
    beyond = _outcomes(invalid_key_rows=_at(MAX_INVALID_KEY_SHARE) + 1)["schema"]
    assert at_limit.severity.value == "WARN"
    assert beyond.severity.value == "ERROR"


def test_volume_compares_a_month_with_the_three_months_before_it():
    band = VolumeBand()
    # A large launch year, then the service settles at a thousand rows a month.
    history = {
        date(2016, 1, 1): 10_000,
        date(2016, 2, 1): 10_000,
        date(2016, 3, 1): 1_000,
        date(2016, 4, 1): 1_000,
        date(2016, 5, 1): 1_000,
        # The month judged and a later one, already loaded by a backfill: neither counts.
        date(2016, 6, 1): 1_000,
        date(2016, 7, 1): 50_000,
    }
    settled = volume_outcome(date(2016, 6, 1), 1_000, history, band)
    assert settled.passed
    assert settled.metadata["trailing_months"] == 3
    assert settled.metadata["trailing_mean"] == 1_000
    assert settled.metadata["ratio"] == 1.0
    assert "2016-03, 2016-04, 2016-05" in settled.description
    # Against those three, a month back at the launch volume is far outside the band.
    surge = volume_outcome(date(2016, 6, 1), 10_000, history, band)
    assert not surge.passed and surge.metadata["ratio"] == 10.0


def test_volume_band_edges_are_inside():
    history = {date(2016, 1, 1): 1_000}
    band = VolumeBand(volume_min_ratio=0.75, volume_max_ratio=1.5)
    assert volume_outcome(date(2016, 2, 1), 750, history, band).passed
    assert volume_outcome(date(2016, 2, 1), 1_500, history, band).passed
    assert not volume_outcome(date(2016, 2, 1), 749, history, band).passed
    assert not volume_outcome(date(2016, 2, 1), 1_501, history, band).passed
