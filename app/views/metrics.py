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
import contextlib
import json
import logging
import math
import time
from functools import partial
from typing import Any

from quart import Blueprint, Response, g, jsonify, request, websocket

from hostpulse.auth import User, check_reporter
from hostpulse.errorcodes import INTERNAL_SERVER_ERROR, PAYLOAD_TOO_LARGE
from hostpulse.errors import ApiError, missing_field, upgrade_required
from hostpulse.payloads import decode_json, require_json
from hostpulse.samples import DEFAULT_LIMITS, Batch, BatchError, TimeWindow, validate_batch
from hostpulse.series import MIN_STEP
from hostpulse.series.naming import LABELS, describe, matching
from hostpulse.settings import Settings

from ..protocol import asgi_of
from ..requests import read_body
from ..resources import get_committer, get_series, get_settings

bp = Blueprint("metrics", __name__)
log = logging.getLogger("hostpulse.metrics")

# Batches of one WebSocket awaiting their commit at once (acks may come out of order).
IN_FLIGHT_PER_CONNECTION = 64
MAX_POINTS = 50_000


def _max_batch_bytes(settings: Settings) -> int:
    return min(DEFAULT_LIMITS.max_bytes, settings.limits.max_content_length)


def _time_window(settings: Settings) -> TimeWindow:
    """Sample times taken now: up to ``max_skew`` ahead, no older than the retention."""
    store = settings.store
    return TimeWindow(time.time(), store.max_skew, store.retention or math.inf)


# --- ingest ------------------------------------------------------------------------------
#
# Every refusal of a batch is a BatchError, whose ``as_json()`` is the one wire form of a
# refusal (``{"error", "message", "seq"}``) and whose ``status`` is the HTTP status of
# ``POST /ingest``; a WebSocket sends the same body and stays open.
#
# A batch costs the loop as little as it can (README, "Ingest cost"): it is read and
# checked where it arrives, without a task of its own; the WebSocket route reads ASGI
# messages itself (``app/protocol.py``) and answers from the committer's callback.


def _read_batch(raw: bytes | str, settings: Settings, user: User | None) -> Batch:
    """The batch in ``raw``, checked: its size, JSON, fields and times, and that the token
    may still report its host (an agent token reports only its hosts, and only while it is
    configured: a WebSocket outlives a revoke)."""
    limit = _max_batch_bytes(settings)
    if len(raw) > limit:
        raise BatchError(f"the batch is larger than {limit} bytes", None, PAYLOAD_TOO_LARGE, 413)
    try:
        obj = decode_json(raw)
    except ApiError as exc:
        raise BatchError(exc.description or "", None, exc.error, exc.code or 400) from None
    batch = validate_batch(obj, window=_time_window(settings))
    check_reporter(settings, user, batch.host, batch.seq)
    return batch


def _store_failed(seq: int | None) -> BatchError:
    return BatchError("the batch could not be stored", seq, INTERNAL_SERVER_ERROR, 500)


def _outcome(batch: Batch, committed: asyncio.Future[int]) -> tuple[dict[str, Any], int]:
    """The answer to a batch whose commit is over: its ack, or why it was not stored."""
    try:
        ack = committed.result()
    except BatchError as exc:  # refused by the store (a cap on series): this batch alone
        return exc.as_json(), exc.status
    except Exception:  # failed in the store; logged, and answered with its seq
        log.exception("storing batch %d of host %s failed", batch.seq, batch.host)
        failed = _store_failed(batch.seq)
        return failed.as_json(), failed.status
    return {"ack": ack, "run": batch.run}, 200


def _wire(answer: dict[str, Any]) -> str:
    """An answer as a WebSocket sends it: compact, keys sorted."""
    return json.dumps(answer, separators=(",", ":"), sort_keys=True)


@bp.post("/ingest")
async def ingest() -> Response:
    require_json(request.mimetype)
    settings = get_settings()
    try:
        batch = _read_batch(await read_body(_max_batch_bytes(settings)), settings, g.get("user"))
    except BatchError as exc:
        answer, status = exc.as_json(), exc.status
    else:
        committed = get_committer().enqueue(batch)
        with contextlib.suppress(Exception):  # read by _outcome
            await asyncio.shield(committed)  # a client that leaves does not cancel the commit
        answer, status = _outcome(batch, committed)
    # jsonify's bytes (compact, sorted, a trailing newline) without its app-context lookups
    return Response(_wire(answer) + "\n", status, content_type="application/json")


@bp.websocket("/ws/agent")
async def ws_agent() -> None:
    """Batches in, acks out, the socket kept open whatever a batch holds.

    One task: it reads each message, checks it at once and hands it to the group
    committer, whose callback queues the answer; a short-lived sender task writes queued
    answers (acks may come out of order). At most ``IN_FLIGHT_PER_CONNECTION`` batches
    await their commit: then reading stops (back-pressure).
    """
    await websocket.accept()
    receive, send = asgi_of(websocket)
    settings, user, committer = get_settings(), g.get("user"), get_committer()
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    outbox: list[str] = []
    pending = 0  # batches handed to the committer, not yet answered
    room: asyncio.Future[None] | None = None  # set when pending falls below the cap
    sender: asyncio.Task[None] | None = None
    gone = False  # the client left: answers have no one to go to

    async def flush() -> None:
        nonlocal gone
        while outbox and not gone:
            text = outbox.pop(0)
            try:
                await send({"type": "websocket.send", "text": text})
            except Exception:  # the client went away: it will send its batches again
                gone = True

    def reply(text: str) -> None:
        nonlocal sender
        if gone:
            return
        outbox.append(text)
        if sender is None or sender.done():
            sender = loop.create_task(flush())

    def committed(batch: Batch, done: asyncio.Future[int]) -> None:
        nonlocal pending, room
        pending -= 1
        if room is not None and not room.done():
            room.set_result(None)
        reply(_wire(_outcome(batch, done)[0]))

    # [limits] websocket_idle_timeout: an agent that sends nothing for this long (and awaits
    # no ack) is disconnected; a live agent sends a batch every interval and reconnects.
    # One timer a connection, re-armed, rather than a timeout around each receive.
    idle = settings.limits.websocket_idle_timeout or None
    last = loop.time()
    timed_out = False
    timer: asyncio.TimerHandle | None = None

    def check_idle() -> None:
        nonlocal timer, timed_out
        assert idle is not None and me is not None
        quiet = loop.time() - last
        if quiet >= idle and not pending:
            timed_out = True
            me.cancel()
            return
        timer = loop.call_later(idle - quiet if quiet < idle else idle, check_idle)

    if idle is not None:
        timer = loop.call_later(idle, check_idle)
    try:
        while True:
            try:
                event = await receive()
            except asyncio.CancelledError:
                if timed_out and me is not None and me.cancelling() == 1:
                    me.uncancel()
                    await websocket.close(1000, f"idle for {idle:g} s")
                    return
                raise
            kind = event["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue  # websocket.connect, read by no one else here
            last = loop.time()
            text = event.get("text")
            raw = text if text is not None else event.get("bytes") or b""
            try:
                batch = _read_batch(raw, settings, user)
            except BatchError as exc:
                reply(_wire(exc.as_json()))
                continue
            except Exception:
                log.exception("storing a batch failed")
                reply(_wire(_store_failed(None).as_json()))
                continue
            try:
                future = committer.enqueue(batch)
            except Exception:
                log.exception("storing batch %d of host %s failed", batch.seq, batch.host)
                reply(_wire(_store_failed(batch.seq).as_json()))
                continue
            pending += 1
            future.add_done_callback(partial(committed, batch))
            if pending >= IN_FLIGHT_PER_CONNECTION:  # back-pressure: stop reading for now
                room = loop.create_future()
                await room
                room = None
    finally:
        # The client left: its batches still commit but their acks have no one to go to;
        # the agent sends them again and they are acknowledged without being stored twice.
        gone = True
        if timer is not None:
            timer.cancel()
        if sender is not None:
            sender.cancel()


@bp.get("/ws/agent")
async def ws_agent_over_http() -> Response:
    """A plain GET (a browser, curl) would get Werkzeug's bare 400: say what the route speaks."""
    raise upgrade_required("/ws/agent")


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
    return jsonify({"hosts": [h.as_json(now) for h in found]})


def _flag_arg(name: str) -> bool:
    text = request.args.get(name, "").lower()
    if text not in ("", "0", "1", "true", "false"):
        raise ApiError(400, "bad_request", f"{name} must be 1 or 0, got {text!r}")
    return text in ("1", "true")


def _series_name(names: list[str], name: str) -> str:
    """The series ``name`` and the label arguments pick (``name`` itself when none is stored)."""
    labels = {key: request.args[key] for key in LABELS if key in request.args}
    found = matching(names, name, labels)
    if len(found) > 1:
        shown = ", ".join(f"{describe(n).metric}{{{_labels(n)}}}" for n in found[:10])
        raise ApiError(400, "bad_request", f"{len(found)} series match {name!r}: give labels to pick one ({shown})")
    if not found and labels:
        raise ApiError(404, "not_found", f"no series {name!r} with labels {labels} on this host")
    return found[0] if found else name


def _labels(name: str) -> str:
    return ",".join(f'{k}="{v}"' for k, v in describe(name).labels)


@bp.get("/hosts/<host>/series")
async def series(host: str) -> Response:
    name = request.args.get("name")
    if not name:
        raise missing_field("name")
    since, until, step = _number_arg("since"), _number_arg("until"), _number_arg("step")
    if step is not None and step < MIN_STEP:
        raise ApiError(400, "bad_request", "step must be at least 0.001 seconds (1 ms)")
    rate = _flag_arg("rate")
    host = host.lower()
    store = get_series()
    if not await asyncio.to_thread(store.has_host, host):
        raise ApiError(404, "not_found", f"no batches from host {host!r}")
    name = _series_name(await asyncio.to_thread(store.names, host), name)
    if rate and not describe(name).counter:
        raise ApiError(400, "bad_request", f"rate=1 needs a counter; {name!r} is a gauge")
    points = await asyncio.to_thread(store.series, host, name, since, until, step, MAX_POINTS + 1, rate)
    if len(points) > MAX_POINTS:
        raise ApiError(400, "bad_request", f"more than {MAX_POINTS} points: give a step or a shorter since/until range")
    answer: dict[str, Any] = {"host": host, "name": name, "step": step, "points": [list(p) for p in points]}
    if rate:
        answer["rate"] = True
    return jsonify(answer)


@bp.get("/metrics")
async def metrics() -> Response:
    text = await asyncio.to_thread(get_series().prometheus_text)
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")
