"""The sidecar's HTTP surface (aiohttp): `/hook`, `/hook/<namespace>/<name>`, `/healthz`, `/readyz`, `/metrics`.

This module owns the HTTP concerns only: reading the body within the size limit (413 before reading more than
`max_body_bytes`, from Content-Length or while streaming) and time limit (408 when the body stalls for
`body_timeout_s`), JSON answers, metrics per request, and a last-resort guard that turns an unexpected error into a
logged 500 instead of a dropped connection. A client that disconnects is not an error of ours: it is counted as
`client_closed` and logged at debug level. `make_runner` serves the app with an idle timeout that also bounds how long
a connection may take to send its request headers. Deciding what a request means and doing it is
`service.PushService`'s job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from proxnix.webhook.index import GitRepoIndex
from proxnix.webhook.metrics import Metrics
from proxnix.webhook.service import UNKNOWN_PROVIDER, Answer, PushService

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024
# A connection that sends no complete request (headers) for this long, or idles between requests, is closed.
DEFAULT_IDLE_TIMEOUT_S = 15.0
# A request body that is not complete this long after the headers is answered 408.
DEFAULT_BODY_TIMEOUT_S = 30.0
LINGER_S = 2.0
_CHUNK = 64 * 1024
# What a request whose client went away is answered internally (nginx's convention); it never reaches anyone.
CLIENT_CLOSED = 499

SERVICE_KEY = web.AppKey("service", PushService)
INDEX_KEY = web.AppKey("index", GitRepoIndex)
METRICS_KEY = web.AppKey("metrics", Metrics)
MAX_BODY_KEY = web.AppKey("max_body", int)
BODY_TIMEOUT_KEY = web.AppKey("body_timeout", float)


class _TooLarge(Exception):
    pass


async def _read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    body = bytearray()
    async with asyncio.timeout(timeout_s):
        async for chunk in request.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise _TooLarge
    return bytes(body)


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


async def _hook(request: web.Request, target: tuple[str, str] | None) -> web.Response:
    app = request.app
    metrics, service, limit = app[METRICS_KEY], app[SERVICE_KEY], app[MAX_BODY_KEY]
    started = time.perf_counter()
    try:
        try:
            body = await _read_body(request, limit, app[BODY_TIMEOUT_KEY])
        except _TooLarge:
            outcome = Answer(
                413,
                {"error": "payload too large", "reason": f"the body exceeds {limit} bytes"},
                UNKNOWN_PROVIDER,
                "too_large",
            )
        except TimeoutError:
            reason = f"the body was not complete within {app[BODY_TIMEOUT_KEY]:g} s"
            outcome = Answer(408, {"error": "request timeout", "reason": reason}, UNKNOWN_PROVIDER, "timeout")
        else:
            outcome = await service.handle(request.headers, request.headers.get("Content-Type"), body, target)
    except ConnectionError:
        # The client went away (mid-body, or before the answer): nobody is there to answer, and it is not ours.
        log.debug("webhook client disconnected", extra={"fields": {"path": request.path}})
        metrics.observe_request(UNKNOWN_PROVIDER, "client_closed", time.perf_counter() - started)
        gone = web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")  # never delivered
        gone.force_close()
        return gone
    except Exception:
        log.exception("webhook request failed", extra={"fields": {"path": request.path}})
        outcome = Answer(500, {"error": "internal error"}, UNKNOWN_PROVIDER, "error")
    metrics.observe_request(outcome.provider, outcome.outcome, time.perf_counter() - started)
    if outcome.status >= 400 and outcome.status != 401:
        log.info(
            "webhook request rejected",
            extra={
                "fields": {"provider": outcome.provider, "outcome": outcome.outcome, "status": outcome.status}
            },
        )
    if outcome.marked:
        metrics.marked.inc(len(outcome.marked))
    response = _json(outcome.status, outcome.body)
    if outcome.status in (408, 413):
        response.force_close()  # the rest of the body was not read
    return response


async def hook(request: web.Request) -> web.Response:
    """POST /hook: any git server, told apart by headers; GitRepos matched by repository URL and ref."""
    return await _hook(request, None)


async def hook_for(request: web.Request) -> web.Response:
    """POST /hook/<namespace>/<name>: only that GitRepo is considered (for senders that cannot be told apart)."""
    return await _hook(request, (request.match_info["namespace"], request.match_info["name"]))


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process serves requests."""
    return _json(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 once the GitRepo index has been listed once, else 503."""
    index = request.app[INDEX_KEY]
    if index.synced:
        return _json(200, {"status": "ready", "gitrepos": len(index)})
    return _json(503, {"status": "not ready", "reason": "the GitRepo index has not been listed yet"})


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition."""
    metrics = request.app[METRICS_KEY]
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})


def build_app(
    service: PushService,
    index: GitRepoIndex,
    metrics: Metrics,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
) -> web.Application:
    """The aiohttp application; the caller runs `index.run()` (see `main`) or fills the index itself (tests)."""
    app = web.Application(client_max_size=max_body_bytes)
    app[BODY_TIMEOUT_KEY] = body_timeout_s
    app[SERVICE_KEY] = service
    app[INDEX_KEY] = index
    app[METRICS_KEY] = metrics
    app[MAX_BODY_KEY] = max_body_bytes
    app.router.add_post("/hook", hook)
    app.router.add_post("/hook/{namespace}/{name}", hook_for)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app


def make_runner(
    app: web.Application, *, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S, shutdown_timeout_s: float = 10.0
) -> web.AppRunner:
    """The runner that serves `app`. aiohttp's keep-alive timeout also runs from the moment a connection opens until
    its first request's headers are complete, so `idle_timeout_s` is both the header timeout and the idle timeout
    (a half-sent request does not hold a connection for aiohttp's default hour). After an early answer (408, 413)
    the rest of a body is read and dropped for at most LINGER_S, so the client sees the answer, then the connection
    closes."""
    return web.AppRunner(
        app,
        shutdown_timeout=shutdown_timeout_s,
        keepalive_timeout=idle_timeout_s,
        lingering_time=LINGER_S,
        access_log=None,
    )
