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

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from churn_assets.online.store import OnlineStore, StoreUnavailable
from churn_assets.serving import answers
from churn_assets.serving.guard import MAX_BODY_BYTES, Guard
from churn_assets.serving.lean import LeanScore
from churn_assets.serving.model import ChampionFollower
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
            await store.close_async()

    app = FastAPI(
        title="churn_assets scoring API",
        summary="The champion's churn score, bucket and reasons for one user.",
        version="1",
        lifespan=lifespan,
    )
    # Added first, so it runs inside the Guard: a request by msno passes the token and size
    # checks before the lean path answers it.
    app.add_middleware(LeanScore, follower=follower, store=store)
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
        model = answers.serving_model(follower)
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
        if request.features is not None:
            answer = await answers.by_features(follower, request.features)
        else:
            answer = await answers.by_msno(follower, store, request.msno)
        return Response(answer, media_type="application/json")
