"""``churn-assets serve``: the API under uvicorn, wired to the project's registry and store."""

from __future__ import annotations

import logging

import uvicorn

from churn_assets.resources import default_resources
from churn_assets.serving.app import create_app
from churn_assets.serving.model import ChampionFollower
from churn_assets.settings import SERVING_VARIABLES, read_variables

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
# Requests in flight beyond which uvicorn answers 503 rather than queue without bound.
LIMIT_CONCURRENCY = 256


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until SIGINT or SIGTERM; one process, one event loop, TreeSHAP on its thread pool.

    httptools parses HTTP and uvloop runs the loop, named rather than left to uvicorn's "auto",
    which would fall back to pure-Python h11 and asyncio were they missing and spend about a fifth
    more CPU per answer.
    """
    resources = default_resources()  # the environment, read once (DESIGN §1)
    token = read_variables(SERVING_VARIABLES).get("api_token")
    follower = ChampionFollower(resources["registry"])
    app = create_app(follower, resources["online_store"].open(), token=token)
    logging.getLogger("churn_assets.serving").setLevel(logging.INFO)
    uvicorn.run(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="uvloop",
        log_level="info",
        access_log=False,  # no line per request
        server_header=False,
        limit_concurrency=LIMIT_CONCURRENCY,
    )
