"""The Redis online store (``CHURN_REDIS_URL``): one hash per published version of a cohort.

Keys, under ``prefix``:

* ``{prefix}:published``: hash, cohort (``YYYY-MM-DD``) -> the version readers see;
* ``{prefix}:{cohort}:{version}:users``: hash, msno -> the record (online/store.py);
* ``{prefix}:{cohort}:{version}:meta``: hash with the feature ``columns`` and when published.

A lookup is one round trip: the pointers are read at most once every :data:`POINTER_TTL_S` per
process (a flip is seen within that time, and the version it replaced stays readable far longer),
and the user's record in every kept cohort is asked for in one pipeline. The API looks users up
with redis-py's asyncio client on its event loop, with no hop to a worker thread.

A new version is written in pipelined chunks with an expiry, so a publish that dies cleans up
after itself; then one transaction makes it permanent and points the cohort at it, and gives the
version it replaces a short expiry, so a reader that read the old pointer still finds its data.
Cohorts older than the newest :data:`KEPT_COHORTS` leave the pointer in that transaction and
expire the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime

import redis
import redis.asyncio

from churn_assets.online.store import (
    OnlineRecord,
    OnlineStore,
    Publication,
    StoreUnavailable,
    chunks,
    decode_payload,
    kept_cohorts,
    new_version_id,
)

DEFAULT_PREFIX = "churn:online"
CONNECTION_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 5}
# A version being written expires unless its publish completes (a killed run leaves nothing).
PENDING_TTL_S = 6 * 3600
# A replaced version stays this long for readers that read the pointer before the flip.
RETIRED_TTL_S = 300
# How long a reader trusts the pointers it read: a publish is served within this time; far below
# RETIRED_TTL_S, so the version a stale pointer names is always still there.
POINTER_TTL_S = 1.0


class RedisOnlineStore(OnlineStore):
    """redis-py, pipelined; a lookup is one round trip (the pointers cached a second)."""

    kind = "redis"

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, **CONNECTION_OPTIONS)
        self._columns: dict[str, list[str]] = {}
        self._pointers: tuple[float, list[tuple[str, str]]] = (-POINTER_TTL_S, [])
        # The asyncio client is bound to the event loop it was made on.
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis] | None = None

    @property
    def _pointer_key(self) -> str:
        return f"{self.prefix}:published"

    def _key(self, cohort: str, version: str, part: str) -> str:
        return f"{self.prefix}:{cohort}:{version}:{part}"

    def publish(
        self, cohort: date, columns: list[str], rows: Iterable[tuple[str, str]]
    ) -> Publication:
        day, version = cohort.isoformat(), new_version_id()
        users, meta = self._key(day, version, "users"), self._key(day, version, "meta")
        pipe = self._redis.pipeline(transaction=False)
        published_at = datetime.now(UTC).isoformat()
        pipe.hset(meta, mapping={"columns": json.dumps(columns), "published_at": published_at})
        pipe.expire(meta, PENDING_TTL_S)
        count = 0
        for batch in chunks(rows):
            pipe.hset(users, mapping=dict(batch))
            pipe.expire(users, PENDING_TTL_S)
            pipe.execute()
            count += len(batch)
        pipe.execute()
        retired = self._flip(day, version)
        return Publication(
            cohort=cohort,
            version=version,
            rows=count,
            retired_cohorts=tuple(date.fromisoformat(d) for d in retired),
        )

    def _flip(self, day: str, version: str) -> list[str]:
        """Make the version permanent and current, drop cohorts past the kept ones, and let what
        leaves the pointer expire: one transaction, retried if another publish flips meanwhile.
        The cohorts retired."""
        retired: list[str] = []

        def flip(pipe: redis.client.Pipeline) -> None:
            before = {k.decode(): v.decode() for k, v in pipe.hgetall(self._pointer_key).items()}
            after = kept_cohorts({**before, day: version})
            leaving = [(d, v) for d, v in before.items() if after.get(d) != v]
            retired[:] = sorted({*before, day} - set(after))
            pipe.multi()
            if day in after:
                pipe.persist(self._key(day, version, "users"))
                pipe.persist(self._key(day, version, "meta"))
                pipe.hset(self._pointer_key, day, version)
            if set(before) - set(after):
                pipe.hdel(self._pointer_key, *(set(before) - set(after)))
            for old_day, old_version in leaving:
                for part in ("users", "meta"):
                    pipe.expire(self._key(old_day, old_version, part), RETIRED_TTL_S)

        self._redis.transaction(flip, self._pointer_key)
        self._pointers = (-POINTER_TTL_S, [])  # this process reads its own publish at once
        return retired

    def lookup(self, msno: str) -> OnlineRecord | None:
        try:
            return self._lookup(msno)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {self._where}: {exc}") from exc

    def published(self) -> dict[date, str]:
        try:
            pointers = self._redis.hgetall(self._pointer_key)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {self._where}: {exc}") from exc
        return {date.fromisoformat(k.decode()): v.decode() for k, v in pointers.items()}

    @property
    def _where(self) -> str:
        """The URL without its password."""
        kwargs = self._redis.connection_pool.connection_kwargs
        return f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}"

    async def lookup_async(self, msno: str) -> OnlineRecord | None:
        try:
            client = self._async_client()
            pointers = self._fresh_pointers()
            if pointers is None:
                pointers = self._keep_pointers(await client.hgetall(self._pointer_key))
            if not pointers:
                return None
            async with client.pipeline(transaction=False) as pipe:
                for day, version in pointers:
                    pipe.hget(self._key(day, version, "users"), msno)
                payloads = await pipe.execute()
            for (day, version), payload in zip(pointers, payloads, strict=True):
                if payload is not None:
                    key = f"{day}:{version}"
                    columns = self._columns.get(key)
                    if columns is None:
                        raw = await client.hget(self._key(day, version, "meta"), "columns")
                        columns = self._remember_columns(key, raw)
                    return decode_payload(msno, date.fromisoformat(day), columns, payload)
            return None
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {self._where}: {exc}") from exc

    def _async_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            # A client of another loop (a server started again in one process) cannot be
            # closed from this one: its connections go with it.
            self._async = (loop, redis.asyncio.Redis.from_url(self.url, **CONNECTION_OPTIONS))
        return self._async[1]

    def _fresh_pointers(self) -> list[tuple[str, str]] | None:
        """The cohorts and versions read less than :data:`POINTER_TTL_S` ago, newest first."""
        read_at, pointers = self._pointers
        return pointers if time.monotonic() - read_at < POINTER_TTL_S else None

    def _keep_pointers(self, raw: dict[bytes, bytes]) -> list[tuple[str, str]]:
        pointers = sorted(((k.decode(), v.decode()) for k, v in raw.items()), reverse=True)
        self._pointers = (time.monotonic(), pointers)
        return pointers

    def _lookup(self, msno: str) -> OnlineRecord | None:
        pointers = self._fresh_pointers()
        if pointers is None:
            pointers = self._keep_pointers(self._redis.hgetall(self._pointer_key))
        if not pointers:
            return None
        pipe = self._redis.pipeline(transaction=False)
        for day, version in pointers:
            pipe.hget(self._key(day, version, "users"), msno)
        for (day, version), payload in zip(pointers, pipe.execute(), strict=True):
            if payload is not None:
                columns = self._columns_of(day, version)
                return decode_payload(msno, date.fromisoformat(day), columns, payload)
        return None

    def _columns_of(self, day: str, version: str) -> list[str]:
        """A version's columns never change: read once per version."""
        key = f"{day}:{version}"
        if key not in self._columns:
            raw = self._redis.hget(self._key(day, version, "meta"), "columns")
            return self._remember_columns(key, raw)
        return self._columns[key]

    def _remember_columns(self, key: str, raw: bytes | None) -> list[str]:
        """A version's columns, kept once read (they never change); a version whose meta is
        gone (expired) is not remembered as having none."""
        if raw is None:
            return []
        self._columns[key] = json.loads(raw)
        return self._columns[key]

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def close(self) -> None:
        self._redis.close()

    async def close_async(self) -> None:
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].aclose()
        self._async = None
        self.close()
