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

from quart import Blueprint, Response, g, jsonify, request, websocket

from hostpulse.auth import check_reporter
from hostpulse.errorcodes import INTERNAL_SERVER_ERROR, PAYLOAD_TOO_LARGE
from hostpulse.errors import ApiError, missing_field
from hostpulse.hoststate import host_state
from hostpulse.payloads import decode_json, require_json
from hostpulse.samples import DEFAULT_LIMITS, Batch, BatchError, TimeWindow, validate_batch
from hostpulse.series import MIN_STEP

from ..requests import read_body
from ..resources import get_committer, get_series, get_settings

bp = Blueprint("metrics", __name__)
log = logging.getLogger("hostpulse.metrics")

# Batches of one WebSocket being validated or committed at once (acks may come out of order).
IN_FLIGHT_PER_CONNECTION = 64
MAX_POINTS = 50_000


def _max_batch_bytes() -> int:
    return min(DEFAULT_LIMITS.max_bytes, get_settings().limits.max_content_length)


def _time_window() -> TimeWindow:
    """Sample times taken now: up to ``max_skew`` ahead, no older than the retention."""
    store = get_settings().store
    return TimeWindow(time.time(), store.max_skew, store.retention or math.inf)


# --- ingest ------------------------------------------------------------------------------
#
# Every refusal of a batch is a BatchError, whose ``as_json()`` is the one wire form of a
# refusal (``{"error", "message", "seq"}``) and whose ``status`` is the HTTP status of
# ``POST /ingest``; a WebSocket sends the same body and stays open.


def _read_batch(raw: bytes | str) -> Batch:
    """The batch in ``raw``, checked: its size, JSON, fields and times, and that the token
    may still report its host (an agent token reports only its hosts, and only while it is
    configured: a WebSocket outlives a revoke)."""
    limit = _max_batch_bytes()
    if len(raw) > limit:
        raise BatchError(f"the batch is larger than {limit} bytes", None, PAYLOAD_TOO_LARGE, 413)
    try:
        obj = decode_json(raw.encode("utf-8") if isinstance(raw, str) else raw)
    except ApiError as exc:
        raise BatchError(exc.description or "", None, exc.error, exc.code or 400) from None
    batch = validate_batch(obj, window=_time_window())
    check_reporter(get_settings(), g.get("user"), batch.host, batch.seq)
    return batch


def _store_failed(seq: int | None) -> BatchError:
    return BatchError("the batch could not be stored", seq, INTERNAL_SERVER_ERROR, 500)


async def _commit(batch: Batch) -> int:
    """The seq to acknowledge once the batch's group commit is on disk."""
    try:
        return await get_committer().submit(batch)
    except BatchError:  # refused by the store (a cap on series): this batch alone
        raise
    except Exception:  # failed in the store; logged, and answered with its seq
        log.exception("storing batch %d of host %s failed", batch.seq, batch.host)
        raise _store_failed(batch.seq) from None


async def _ingest(raw: bytes | str) -> tuple[dict[str, Any], int]:
    """One batch's answer and status: the ack once committed, or its refusal (it never
    raises for the batch, so a WebSocket answers it and stays open)."""
    try:
        batch = _read_batch(raw)
        ack = await _commit(batch)
    except BatchError as exc:
        return exc.as_json(), exc.status
    return {"ack": ack, "run": batch.run}, 200


@bp.post("/ingest")
async def ingest() -> tuple[Response, int]:
    require_json(request.mimetype)
    answer, status = await _ingest(await read_body(_max_batch_bytes()))
    return jsonify(answer), status


@bp.websocket("/ws/agent")
async def ws_agent() -> None:
    await websocket.accept()
    slots = asyncio.Semaphore(IN_FLIGHT_PER_CONNECTION)
    sending = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()

    async def answer(raw: bytes | str) -> None:
        try:
            reply, _ = await _ingest(raw)
        except Exception:
            log.exception("storing a batch failed")
            reply = _store_failed(None).as_json()
        finally:
            slots.release()
        async with sending:
            try:
                await websocket.send(json.dumps(reply, separators=(",", ":"), sort_keys=True))
            except Exception:  # the client went away: it will send the batch again
                pass

    # [limits] websocket_idle_timeout: an agent that sends nothing for this long (and awaits
    # no ack) is disconnected; a live agent sends a batch every interval and reconnects.
    idle = get_settings().limits.websocket_idle_timeout or None
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
        426,
        "upgrade_required",
        "/ws/agent speaks WebSocket: connect with Upgrade: websocket",
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
    found = await asyncio.to_thread(get_series().hosts)
    now = time.time()  # the service's clock, as last_seen is
    return jsonify(
        {
            "hosts": [
                {
                    "host": h.host,
                    "last_seen": h.last_seen,
                    "state": host_state(now, h.last_seen, h.interval, h.previous_seen, h.goodbye),
                    "dropped": h.dropped,
                    "latest": h.latest,
                }
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
    store = get_series()
    if not await asyncio.to_thread(store.has_host, host):
        raise ApiError(404, "not_found", f"no batches from host {host!r}")
    points = await asyncio.to_thread(store.series, host, name, since, until, step, MAX_POINTS + 1)
    if len(points) > MAX_POINTS:
        raise ApiError(400, "bad_request", f"more than {MAX_POINTS} points: give a step or a shorter since/until range")
    return jsonify({"host": host, "name": name, "step": step, "points": [list(p) for p in points]})


@bp.get("/metrics")
async def metrics() -> Response:
    text = await asyncio.to_thread(get_series().prometheus_text)
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")
