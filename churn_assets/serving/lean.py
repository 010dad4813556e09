"""``POST /v1/score`` by msno, the API's hot request, answered without FastAPI's request work.

Almost every request is ``{"msno": "..."}``. For it, FastAPI's routing, dependency solving and
body validation cost several times the lookup and the score together, and that cost is what held
the API's tail latency back. :class:`LeanScore` answers such a request itself, behind the Guard
(token and size limit as before), with the bytes and status the documented route gives: both
answer through serving/answers.py. Whatever it cannot take as plainly valid (features, a body
that is malformed, invalid, or not declared JSON) goes on to the route, which validates it as
before and names what is wrong; /openapi.json still describes the route.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

from churn_assets.online.store import OnlineStore
from churn_assets.serving.answers import by_msno
from churn_assets.serving.guard import ASGIApp, Receive, Scope, Send, read_body, replay, send_json
from churn_assets.serving.model import ChampionFollower
from churn_assets.serving.schemas import MSNO_LENGTH

PATH = "/v1/score"


class LeanScore:
    """Pure ASGI: answers ``POST /v1/score`` with a plain ``{"msno": ...}`` body; passes on
    everything else untouched."""

    def __init__(self, app: ASGIApp, follower: ChampionFollower, store: OnlineStore) -> None:
        self.app = app
        self.follower = follower
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _score_request(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive) or b""  # the Guard in front bounded and buffered it
        msno = plain_msno(body)
        if msno is None:
            await self.app(scope, replay(body, receive), send)
            return
        try:
            status, answer = 200, await by_msno(self.follower, self.store, msno)
        except HTTPException as exc:
            status, answer = exc.status_code, _detail(exc.detail)
        await send_json(send, status, answer)


def _score_request(scope: Scope) -> bool:
    """A POST to the score route that declares a JSON body (FastAPI parses no other as JSON)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
        return False
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            return value.partition(b";")[0].strip().lower() == b"application/json"
    return False


def plain_msno(body: bytes) -> str | None:
    """The msno of a body that is exactly ``{"msno": <string>}`` with a string ScoreRequest
    takes; None for anything else (the route decides about it)."""
    try:
        request: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if type(request) is not dict or len(request) != 1:
        return None
    msno = request.get("msno")
    if type(msno) is not str or not MSNO_LENGTH[0] <= len(msno) <= MSNO_LENGTH[1]:
        return None
    try:
        msno.encode()  # a lone surrogate (an escape JSON allows) is no string pydantic takes
    except UnicodeEncodeError:
        return None
    return msno


def _detail(detail: Any) -> bytes:
    """An HTTPException's body, as FastAPI's handler writes it (starlette's JSONResponse)."""
    return json.dumps(
        {"detail": detail}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()
