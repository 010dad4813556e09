"""The HTTP scoring API (DESIGN §7): the champion's answer for one user, as batch scoring gives it.

``POST /v1/score`` with an msno reads the user's features from the online store (the newest cohort
that holds them); the probability is computed from them by the serving model. Where that model
scored the cohort, the bucket and reasons are the batch's (a capacity bucket ranks the whole
cohort, which one row cannot redo); otherwise the cut-offs draw the bucket and TreeSHAP explains
the one row. Every answer names the policy that drew its bucket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from churn_assets.online.store import OnlineRecord, OnlineStore, StoreUnavailable
from churn_assets.serving.guard import MAX_BODY_BYTES, Guard
from churn_assets.serving.model import BatchAnswer, ChampionFollower, Score, ServingModel, score
from churn_assets.serving.reports import reports_router
from churn_assets.serving.schemas import (
    HealthResponse,
    ModelResponse,
    ScoreRequest,
    ScoreResponse,
)

# Documents the bearer scheme in /openapi.json; the token itself is checked by the Guard.
BEARER = HTTPBearer(auto_error=False, description="CHURN_API_TOKEN, when the server has one")


def create_app(
    follower: ChampionFollower,
    store: OnlineStore,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The API over ``store`` and the model ``follower`` holds; it starts following on startup."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        follower.start()
        try:
            yield
        finally:
            follower.stop()
            store.close()

    app = FastAPI(
        title="churn_assets scoring API",
        summary="The champion's churn score, bucket and reasons for one user.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(Guard, token=token, max_body_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    _add_health(app, follower, store)
    _add_model(app, follower)
    _add_score(app, follower, store)
    app.include_router(reports_router())  # $CHURN_HOME/reports, read-only, for the UI's links
    return app


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each field and what is wrong with it; the input is not echoed back (it may not
    even be valid JSON to write: an infinite number, say)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in errors]
    return JSONResponse({"detail": detail}, status_code=422)


def _add_health(app: FastAPI, follower: ChampionFollower, store: OnlineStore) -> None:
    @app.get("/healthz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    def healthz() -> JSONResponse:
        """200 when a model is loaded and the online store answers; 503 otherwise."""
        model = follower.model
        try:
            cohorts = sorted(store.published())
        except StoreUnavailable:
            cohorts = None
        answer = HealthResponse(
            status="ok" if model is not None and cohorts is not None else "no model",
            model_version=model.version if model else None,
            online_store=store.kind if cohorts is not None else f"{store.kind}: unavailable",
            published_cohorts=cohorts or [],
        )
        code = 200 if answer.status == "ok" else 503
        return JSONResponse(answer.model_dump(mode="json"), status_code=code)


def _add_model(app: FastAPI, follower: ChampionFollower) -> None:
    @app.get("/v1/model", response_model=ModelResponse, dependencies=[Depends(BEARER)])
    def serving_model() -> ModelResponse:
        """The version being served, through which alias, and what it learnt from."""
        model = _serving(follower)
        return ModelResponse(
            model_name=follower.registry.model_name,
            alias=follower.alias,
            version=model.version,
            training_cohorts=model.training_cohorts,
            validation_cohort=model.validation_cohort,
            features=list(model.features),
            loaded_at=model.loaded_at,
        )


def _add_score(app: FastAPI, follower: ChampionFollower, store: OnlineStore) -> None:
    @app.post(
        "/v1/score",
        response_model=ScoreResponse,
        dependencies=[Depends(BEARER)],
        responses={404: {"description": "msno in no published cohort"}},
    )
    async def score_user(request: ScoreRequest) -> Response:
        """Score a user by msno (looked up in the online store) or by the features given."""
        model = _serving(follower)  # read once: this request is answered by this version
        if request.features is not None:
            _check_features(model, request.features)
            answer = await _score(model, request.features, None)
            return _respond(model, answer, None, None)
        if store.inline_lookup:
            record = _lookup(store, request.msno)
        else:
            record = await run_in_threadpool(_lookup, store, request.msno)
        _check_record(model, record)
        same_scorer = record.model_version == model.version and record.bucket is not None
        batch = (
            BatchAnswer(record.bucket, record.bucket_policy, record.top_reasons)
            if same_scorer
            else None
        )
        return _respond(model, await _score(model, record.features, batch), record, batch)


async def _score(model: ServingModel, values: dict, batch: BatchAnswer | None) -> Score:
    """On the event loop when the batch's reasons are served (one small predict, a fraction of a
    millisecond, cheaper than a hop to a thread and back); TreeSHAP for reasons on demand takes
    longer, so it runs on the thread pool and other requests go on meanwhile."""
    if batch is not None and batch.top_reasons:
        return score(model, values, batch)
    return await run_in_threadpool(score, model, values, batch)


def _respond(
    model: ServingModel, answer: Score, record: OnlineRecord | None, batch: BatchAnswer | None
) -> Response:
    """The answer as JSON, serialised once here: FastAPI would validate it again otherwise."""
    body = ScoreResponse(
        msno=record.msno if record else None,
        cohort_month=record.cohort_month if record else None,
        churn_probability=answer.churn_probability,
        bucket=answer.bucket,
        model_version=model.version,
        top_reasons=answer.top_reasons,
        reasons_from="batch" if batch is not None and batch.top_reasons else "on_demand",
        bucket_policy=answer.bucket_policy,
    )
    return Response(body.model_dump_json(), media_type="application/json")


def _check_record(model: ServingModel, record: OnlineRecord) -> None:
    missing = [c for c in model.features if c not in record.features]
    if missing:
        raise HTTPException(
            409,
            f"model v{model.version} reads features cohort {record.cohort_month:%Y-%m} was not "
            f"built with: {', '.join(missing)}",
        )


def _serving(follower: ChampionFollower) -> ServingModel:
    model = follower.model
    if model is None:
        raise HTTPException(503, f"no '{follower.registry.model_name}' version is champion yet")
    return model


def _lookup(store: OnlineStore, msno: str) -> OnlineRecord:
    try:
        record = store.lookup(msno)
    except StoreUnavailable as exc:
        raise HTTPException(503, f"online store unavailable: {exc}") from exc
    if record is None:
        raise HTTPException(404, f"msno {msno!r} is in no published cohort")
    return record


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
