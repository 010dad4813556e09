"""What every online store offers, and the one record format both implementations keep.

A user's record is one JSON array: the cohort's feature values in the order of its columns (kept
once per published version), then the batch score, bucket, model version, reasons, the bucket
policy that drew the bucket and where the reasons came from (records published before those two
were kept have five or six items). JSON keeps
a float exactly (``repr`` round-trips), which is what lets the API answer what batch scoring did
to the last bit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

# Rows written per round trip (Redis pipeline) or per executemany (SQLite).
CHUNK_ROWS = 5_000
# Cohorts a store keeps: the current one and the one before (a user whose next expiry has not
# been scored yet is still found); older cohorts leave the pointer and then the store.
KEPT_COHORTS = 2


@dataclass(frozen=True)
class OnlineRecord:
    """One user as the newest cohort that holds them was published."""

    msno: str
    cohort_month: date
    features: dict[str, Any]
    churn_probability: float | None
    bucket: str | None
    model_version: str | None
    top_reasons: str | None
    bucket_policy: str | None = None
    # "batch" (the predictions table's) or "publication" (computed when the cohort was published,
    # for users batch left unexplained); None when the record has no reasons.
    reasons_from: str | None = None


@dataclass(frozen=True)
class Publication:
    """A cohort's published version: its id and how many users it holds."""

    cohort: date
    version: str
    rows: int
    retired_cohorts: tuple[date, ...] = ()


class StoreUnavailable(RuntimeError):
    """The store did not answer (Redis down, a file unreadable): the message says which."""


class OnlineStore(ABC):
    """Publish a cohort whole, then look users up; readers only ever see whole versions."""

    kind: str
    # Whether a lookup is quick local work the API may do on its event loop (a file read), or
    # waits on a network and goes to the thread pool.
    inline_lookup: bool = False

    @abstractmethod
    def publish(
        self, cohort: date, columns: list[str], rows: Iterable[tuple[str, str]]
    ) -> Publication:
        """Write ``rows`` (msno, :func:`encode_payload`) as a new version of ``cohort``, then
        make it the one readers see, in one atomic step that also drops cohorts older than the
        newest :data:`KEPT_COHORTS` (their data goes once no reader can still be reading it)."""

    @abstractmethod
    def lookup(self, msno: str) -> OnlineRecord | None:
        """The user in the newest published cohort that holds them; None when in none."""

    async def lookup_async(self, msno: str) -> OnlineRecord | None:
        """:meth:`lookup` for an event loop: inline when it is quick local work, otherwise on a
        worker thread; a store with an asyncio client overrides it."""
        if self.inline_lookup:
            return self.lookup(msno)
        return await asyncio.to_thread(self.lookup, msno)

    @abstractmethod
    def published(self) -> dict[date, str]:
        """The version readers see, per cohort."""

    def close(self) -> None:  # noqa: B027 - optional: stores without connections do nothing
        """Let go of connections."""

    async def close_async(self) -> None:
        """Let go of connections, the event loop's included (the API's shutdown)."""
        self.close()


def kept_cohorts(pointers: dict[str, str]) -> dict[str, str]:
    """The newest :data:`KEPT_COHORTS` of a pointer map (ISO cohort -> version)."""
    return {day: pointers[day] for day in sorted(pointers, reverse=True)[:KEPT_COHORTS]}


def new_version_id() -> str:
    """Sortable by publication time, unique across processes."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def encode_payload(
    values: list[Any],
    churn_probability: float | None,
    bucket: str | None,
    model_version: str | None,
    top_reasons: str | None,
    bucket_policy: str | None = None,
    reasons_from: str | None = None,
) -> str:
    """A user's record as stored: feature values in column order, then the batch's answer."""
    return json.dumps(
        [
            values,
            churn_probability,
            bucket,
            model_version,
            top_reasons,
            bucket_policy,
            reasons_from,
        ],
        separators=(",", ":"),
        allow_nan=False,
    )


def decode_payload(
    msno: str, cohort: date, columns: list[str], payload: str | bytes
) -> OnlineRecord:
    values, probability, bucket, version, reasons, *later = json.loads(payload)
    policy, source = [*later, None, None][:2]
    return OnlineRecord(
        msno=msno,
        cohort_month=cohort,
        features=dict(zip(columns, values, strict=True)),
        churn_probability=probability,
        bucket=bucket,
        model_version=version,
        top_reasons=reasons,
        bucket_policy=policy,
        reasons_from=source or ("batch" if reasons is not None else None),
    )


def chunks(rows: Iterable[tuple[str, str]], size: int = CHUNK_ROWS) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch
