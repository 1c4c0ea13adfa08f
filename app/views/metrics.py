"""The metrics platform (port only): agents' batches in, hosts, series and /metrics out.

Batches arrive on ``WS /ws/agent`` (text frames) or ``POST /ingest``; each is validated
(``hostpulse.samples``), handed to the group committer and acknowledged with
``{"ack": seq, "run": run}`` only once its transaction has committed. A bad batch gets
``{"error": ..., "message": ..., "seq": seq}`` and the WebSocket stays open: so does one
refused by the store (a cap on series) or that failed in it alone (the others of its
group commit are stored and acknowledged all the same).

The series store shares the service's SQLite file (its tables are ``series_*``); every
call to it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from quart import Blueprint, Quart, Response, current_app, g, jsonify, request, websocket
from quart.blueprints import BlueprintSetupState

from ..requests import read_body
from hostpulse.auth import check_reporter
from hostpulse.errors import ApiError, missing_field
from hostpulse.payloads import decode_json, require_json
from hostpulse.samples import DEFAULT_LIMITS, Batch, BatchError, TimeWindow, validate_batch
from hostpulse.series import MIN_STEP, GroupCommitter, SeriesStore

bp = Blueprint("metrics", __name__)
log = logging.getLogger("hostpulse.metrics")

SERIES = "hostpulse.series"
COMMITTER = "hostpulse.series.committer"
PRUNER = "hostpulse.series.pruner"
# Batches of one WebSocket being validated or committed at once (acks may come out of order).
IN_FLIGHT_PER_CONNECTION = 64
MAX_POINTS = 50_000


@bp.record_once
def _open_store(state: BlueprintSetupState) -> None:
    settings = state.app.extensions["hostpulse"]
    state.app.extensions[SERIES] = SeriesStore(
        settings.db_path,
        settings.store.retention or math.inf,
        max_series_per_host=settings.store.max_series_per_host or None,
        max_series=settings.store.max_series or None,
    )


def _store() -> SeriesStore:
    return current_app.extensions[SERIES]


def _committer() -> GroupCommitter:
    """One committer per event loop (a test client may run several apps' loops)."""
    loop = asyncio.get_running_loop()
    owner, committer = current_app.extensions.get(COMMITTER, (None, None))
    if owner is not loop or committer is None:
        committer = GroupCommitter(_store())
        current_app.extensions[COMMITTER] = (loop, committer)
    return committer


def _max_batch_bytes() -> int:
    return min(DEFAULT_LIMITS.max_bytes, current_app.extensions["hostpulse"].limits.max_content_length)


def _time_window() -> TimeWindow:
    """Sample times taken now: up to ``max_skew`` ahead, no older than the retention."""
    store = current_app.extensions["hostpulse"].store
    return TimeWindow(time.time(), store.max_skew, store.retention or math.inf)


def _check_sender(batch: Batch) -> None:
    """SPEC "Agents and their hosts": the token reports only its hosts, and only while it
    is configured (BatchError ``forbidden`` / ``unauthorized`` with the batch's seq)."""
    check_reporter(current_app.extensions["hostpulse"], g.get("user"), batch.host, batch.seq)


async def _prune_forever(app: Quart) -> None:
    store: SeriesStore = app.extensions[SERIES]
    period = min(3600.0, max(1.0, store.retention / 10))
    while True:
        try:
            deleted = await asyncio.to_thread(store.prune)
            if deleted:
                log.info("retention: deleted %d samples older than %g s", deleted, store.retention)
        except Exception:  # a locked or full disk: try again next period
            log.exception("retention pruning failed")
        await asyncio.sleep(period)


@bp.before_app_serving
async def _start_pruning() -> None:
    if not math.isinf(current_app.extensions[SERIES].retention):
        current_app.extensions[PRUNER] = asyncio.create_task(_prune_forever(current_app._get_current_object()))


@bp.after_app_serving
async def _stop() -> None:
    pruner = current_app.extensions.pop(PRUNER, None)
    if pruner is not None:
        pruner.cancel()
    _, committer = current_app.extensions.pop(COMMITTER, (None, None))
    if committer is not None:
        await committer.close()


# --- ingest ------------------------------------------------------------------------------


async def _ingest(raw: bytes | str) -> dict[str, Any]:
    """One batch's answer: the ack after the commit, or the error (never raises for the batch)."""
    if len(raw) > _max_batch_bytes():
        return BatchError(
            f"the batch is larger than {_max_batch_bytes()} bytes", None, "payload_too_large", 413
        ).as_json() | {"status": 413}
    try:
        obj = decode_json(raw.encode("utf-8") if isinstance(raw, str) else raw)
    except ApiError as exc:
        return {"error": exc.error, "message": exc.description, "seq": None, "status": 400}
    try:
        batch = validate_batch(obj, window=_time_window())
        _check_sender(batch)
    except BatchError as exc:
        return exc.as_json() | {"status": exc.status}
    try:
        ack = await _committer().submit(batch)
    except BatchError as exc:  # refused by the store (a cap on series): this batch alone
        return exc.as_json() | {"status": exc.status}
    except Exception:  # failed in the store; logged, and answered with its seq
        log.exception("storing batch %d of host %s failed", batch.seq, batch.host)
        return {
            "error": "internal_server_error", "message": "the batch could not be stored",
            "seq": batch.seq, "status": 500,
        }
    return {"ack": ack, "run": batch.run}


@bp.post("/ingest")
async def ingest() -> tuple[Response, int]:
    require_json(request.mimetype)
    raw = await read_body(_max_batch_bytes())
    answer = await _ingest(raw)
    status = answer.pop("status", 200)
    return jsonify(answer), status


@bp.websocket("/ws/agent")
async def ws_agent() -> None:
    await websocket.accept()
    slots = asyncio.Semaphore(IN_FLIGHT_PER_CONNECTION)
    sending = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()

    async def answer(raw: bytes | str) -> None:
        try:
            reply = await _ingest(raw)
        except Exception:
            log.exception("storing a batch failed")
            reply = {"error": "internal_server_error", "message": "the batch could not be stored", "seq": None}
        finally:
            slots.release()
        reply.pop("status", None)
        async with sending:
            try:
                await websocket.send(json.dumps(reply, separators=(",", ":"), sort_keys=True))
            except Exception:  # the client went away: it will send the batch again
                pass

    # [limits] websocket_idle_timeout: an agent that sends nothing for this long (and awaits
    # no ack) is disconnected; a live agent sends a batch every interval and reconnects.
    idle = current_app.extensions["hostpulse"].limits.websocket_idle_timeout or None
    try:
        while True:
            try:
                async with asyncio.timeout(idle):  # a timer, not a task a message
                    raw = await websocket.receive()
            except TimeoutError:
                if tasks:  # batches still being stored: their acks are due
                    continue
                await websocket.close(1000, f"idle for {idle:g} s")
                return
            await slots.acquire()  # back-pressure: stop reading while this many are pending
            task = asyncio.create_task(answer(raw))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        # The client left: its batches still commit (the committer shields them) but
        # their acks have no one to go to; the agent sends them again and they are
        # acknowledged without being stored twice.
        for task in tasks:
            task.cancel()


@bp.get("/ws/agent")
async def ws_agent_over_http() -> Response:
    """A plain GET (a browser, curl) would get Werkzeug's bare 400: say what the route speaks."""
    raise ApiError(
        426, "upgrade_required", "/ws/agent speaks WebSocket: connect with Upgrade: websocket",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )


# --- queries -----------------------------------------------------------------------------


def _number_arg(name: str) -> float | None:
    text = request.args.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ApiError(400, "bad_request", f"{name} must be a finite number")
    return value


@bp.get("/hosts")
async def hosts() -> Response:
    found = await asyncio.to_thread(_store().hosts)
    return jsonify(
        {
            "hosts": [
                {"host": h.host, "last_seen": h.last_seen, "dropped": h.dropped, "latest": h.latest}
                for h in found
            ]
        }
    )


@bp.get("/hosts/<host>/series")
async def series(host: str) -> Response:
    name = request.args.get("name")
    if not name:
        raise missing_field("name")
    since, until, step = _number_arg("since"), _number_arg("until"), _number_arg("step")
    if step is not None and step < MIN_STEP:
        raise ApiError(400, "bad_request", "step must be at least 0.001 seconds (1 ms)")
    host = host.lower()
    store = _store()
    if not await asyncio.to_thread(store.has_host, host):
        raise ApiError(404, "not_found", f"no batches from host {host!r}")
    points = await asyncio.to_thread(store.series, host, name, since, until, step, MAX_POINTS + 1)
    if len(points) > MAX_POINTS:
        raise ApiError(
            400, "bad_request", f"more than {MAX_POINTS} points: give a step or a shorter since/until range"
        )
    return jsonify({"host": host, "name": name, "step": step, "points": [list(p) for p in points]})


@bp.get("/metrics")
async def metrics() -> Response:
    text = await asyncio.to_thread(_store().prometheus_text)
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")
