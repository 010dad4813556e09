"""What ``POST /v1/score`` answers, as JSON bytes: shared by the documented route and by the lean
path that answers requests by msno ahead of FastAPI (serving/lean.py), so both give the same
answer, and the same status and detail when there is none (raised as ``HTTPException``)."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from churn_assets.online.store import OnlineRecord, OnlineStore, StoreUnavailable
from churn_assets.serving.model import BatchAnswer, ChampionFollower, Score, ServingModel, score
from churn_assets.serving.schemas import ScoreResponse


def serving_model(follower: ChampionFollower) -> ServingModel:
    """The model to answer with, read once: the request is answered by this version (503 when
    there is none yet)."""
    model = follower.model
    if model is None:
        raise HTTPException(503, f"no '{follower.registry.model_name}' version is champion yet")
    return model


async def by_msno(follower: ChampionFollower, store: OnlineStore, msno: str) -> bytes:
    """The user's answer from the newest cohort that holds them (404 when in none)."""
    model = serving_model(follower)
    record = await _lookup(store, msno)
    _check_record(model, record)
    same_scorer = record.model_version == model.version and record.bucket is not None
    batch = (
        BatchAnswer(record.bucket, record.bucket_policy, record.top_reasons, record.reasons_from)
        if same_scorer
        else None
    )
    return _encode(model, await _score(model, record.features, batch), record, batch)


async def by_features(follower: ChampionFollower, features: dict[str, float | None]) -> bytes:
    """The answer for features given as they are (422 naming what the model does not read, or
    reads and is not given)."""
    model = serving_model(follower)
    _check_features(model, features)
    return _encode(model, await _score(model, features, None), None, None)


async def _score(model: ServingModel, values: dict, batch: BatchAnswer | None) -> Score:
    """On the event loop when the batch's reasons are served (one small predict, a fraction of a
    millisecond, cheaper than a hop to a thread and back); TreeSHAP for reasons on demand takes
    longer, so it runs on the thread pool and other requests go on meanwhile."""
    if batch is not None and batch.top_reasons:
        return score(model, values, batch)
    return await run_in_threadpool(score, model, values, batch)


def _encode(
    model: ServingModel, answer: Score, record: OnlineRecord | None, batch: BatchAnswer | None
) -> bytes:
    """The answer as JSON, serialised once here: FastAPI would validate it again otherwise."""
    body = ScoreResponse(
        msno=record.msno if record else None,
        cohort_month=record.cohort_month if record else None,
        churn_probability=answer.churn_probability,
        bucket=answer.bucket,
        model_version=model.version,
        top_reasons=answer.top_reasons,
        reasons_from=batch.reasons_from if batch is not None and batch.top_reasons else "on_demand",
        bucket_policy=answer.bucket_policy,
    )
    return body.model_dump_json().encode()


async def _lookup(store: OnlineStore, msno: str) -> OnlineRecord:
    try:
        record = await store.lookup_async(msno)
    except StoreUnavailable as exc:
        raise HTTPException(503, f"online store unavailable: {exc}") from exc
    if record is None:
        raise HTTPException(404, f"msno {msno!r} is in no published cohort")
    return record


def _check_record(model: ServingModel, record: OnlineRecord) -> None:
    missing = [c for c in model.features if c not in record.features]
    if missing:
        raise HTTPException(
            409,
            f"model v{model.version} reads features cohort {record.cohort_month:%Y-%m} was not "
            f"built with: {', '.join(missing)}",
        )


def _check_features(model: ServingModel, given: dict[str, float | None]) -> None:
    """422 naming each feature the model does not read, and each it reads that is missing."""
    unknown = [n for n in given if n not in model.features]
    missing = [n for n in model.features if n not in given]
    errors = [
        {
            "loc": ("body", "features", name),
            "msg": f"not a feature of model v{model.version} (GET /v1/model lists them)",
            "type": "extra_forbidden",
        }
        for name in unknown
    ] + [
        {
            "loc": ("body", "features", name),
            "msg": f"model v{model.version} reads it: give a number, or null if unknown",
            "type": "missing",
        }
        for name in missing
    ]
    if errors:
        raise RequestValidationError(errors)
