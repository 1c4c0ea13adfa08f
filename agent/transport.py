"""Sending spooled batches to the service and handling its acknowledgements.

Two transports with one behaviour: :class:`WebSocketSender` streams batches as text
frames on ``/ws/agent`` (up to ``window`` unacknowledged at once) and
:class:`HttpSender` posts them one by one to ``/ingest``, for networks that block
WebSockets. Either way a batch leaves the spool only when the service acknowledges it
(``{"ack": seq, "run": run}``); everything else is sent again after a reconnect.

The service's answer to a batch decides its fate:

- ``ack``: stored (maybe before: the service stores each ``(host, run, seq)`` once);
  forget it.
- an error about the batch itself (``bad_request``, ``missing_field``,
  ``payload_too_large``, ...): it will never be accepted; drop it and count its samples.
- an error about the service (5xx, 429): keep the batch, back off, reconnect.
- the token refused (401, 403 at the handshake or on ``/ingest``; ``unauthorized`` or
  ``forbidden`` for a batch: a revoked token, a host the token may not report): keep the
  batches, say so once, and retry with a delay growing to :data:`REFUSED_CAP` (a token the
  operator adds or widens is seen by the service within 2 s, so the agent comes back by
  itself) until an acknowledgement ends it.

Given several services (``--server`` repeated), a sender uses one at a time and, when its link
fails, fails over to the next at once; only after every one failed in a row does it wait its
backoff. Batches not acknowledged go again to the next service: nodes on one shared store
store each ``(host, run, seq)`` once, so a batch re-sent after a failover is acknowledged and
stored once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from hostpulse.errorcodes import (
    FORBIDDEN,
    INTERNAL_SERVER_ERROR,
    SERVICE_UNAVAILABLE,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
)

from .backoff import Backoff
from .spool import Entry, Spool

log = logging.getLogger("hostpulse.agent")

# Answers that refuse the token or what it may send (nothing wrong with the batch itself).
REFUSED_CODES = frozenset({UNAUTHORIZED, FORBIDDEN})
# Error codes that say nothing is wrong with the batch: try again later.
RETRY_CODES = REFUSED_CODES | {INTERNAL_SERVER_ERROR, SERVICE_UNAVAILABLE, TOO_MANY_REQUESTS}
# Over HTTP only these say "this batch will never be accepted"; any other non-200 is retried.
REFUSED_STATUSES = frozenset({400, 413, 422})
# A connection that stayed up this long was healthy, acked or not.
HEALTHY_AFTER = 30.0
# While the token is refused: retries from REFUSED_BASE s growing to REFUSED_CAP s.
REFUSED_BASE = 5.0
REFUSED_CAP = 300.0


class Disconnect(Exception):
    """The link is unusable for now (refused, closed, a retryable error); the reason is the message."""


class Refused(Disconnect):
    """The service refused the token, or a batch for what the token may not send.

    ``kind`` stays the same from one try to the next (no seq in it): the log says it once."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _refusal(exc: BaseException) -> Refused | None:
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status in (401, 403):
        return Refused(_describe(exc), f"handshake {exc.status}")
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        if exc.status in (401, 403):
            return f"the service refused the token (HTTP {exc.status})"
        return f"WebSocket handshake failed (HTTP {exc.status})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timed out"
    if isinstance(exc, Disconnect):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Sender:
    """What both transports share: the spool, the wake-up event, backoff and logs."""

    def __init__(
        self,
        url: str | Sequence[str],
        token: str,
        spool: Spool,
        session: aiohttp.ClientSession,
        wake: asyncio.Event,
        backoff: Backoff | None = None,
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)  # in the order they are tried
        self.url = self.urls[0]  # the one in use
        self._failed_in_a_row = 0  # services that failed since the last ack or backoff wait
        self.spool = spool
        self.session = session
        self.wake = wake  # set when there is something new to send
        self.backoff = backoff or Backoff()
        self.refused_backoff = Backoff(REFUSED_BASE, REFUSED_CAP)
        self.refusing: str | None = None  # the kind of refusal the log has told, until an ack
        self.headers = {"Authorization": f"Bearer {token}"}
        self.connected = False
        self.acked = 0
        self.refused = 0
        self._flushing = False
        self._interrupt = asyncio.Event()

    def backlog(self) -> str:
        return f"backlog {len(self.spool)} batches, {self.spool.size} bytes"

    async def run(self) -> None:
        """Send forever: connect, send, and after any failure wait and reconnect."""
        while True:
            started = time.monotonic()
            try:
                await self.connection()
                reason = "closed by the service"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure of the link ends in a reconnect
                reason = _describe(exc)
                refused = _refusal(exc)
            else:
                refused = None
            self.spool.release()
            if time.monotonic() - started >= HEALTHY_AFTER:
                self.backoff.reset()
            what = "disconnected from" if self.connected else "could not connect to"
            self.connected = False
            failed, next_now = self.url, self._fail_over()
            if next_now:  # another service not yet tried in this round: at once
                told = refused is not None and refused.kind == self.refusing  # a refusal is said once
                log.log(
                    logging.DEBUG if told else logging.WARNING,
                    "%s %s: %s; failing over to %s (%s)",
                    what,
                    failed,
                    reason,
                    self.url,
                    self.backlog(),
                )
                delay = 0.0
            elif refused is not None:
                delay = self.refused_backoff.next()
                if self._flushing:
                    delay = min(delay, 0.25)
                if refused.kind != self.refusing:
                    log.error(
                        "%s %s: %s; keeping the batches and retrying with a delay growing up to %g s, "
                        "said once until it changes (%s)",
                        what,
                        failed,
                        reason,
                        REFUSED_CAP,
                        self.backlog(),
                    )
                else:
                    log.debug("still refused by %s: %s; retrying in %.1f s", failed, reason, delay)
                self.refusing = refused.kind
            else:
                delay = self.backoff.next()
                if self._flushing:  # the agent is about to exit: short, steady retries
                    delay = min(delay, 0.25)
                log.warning(
                    "%s %s: %s; retrying %s in %.1f s (%s)", what, failed, reason, self.url, delay, self.backlog()
                )
            # Not asyncio.wait_for: on 3.11 it swallows a cancel that comes as the event is
            # set (the agent then kept retrying after SIGTERM instead of stopping).
            try:
                async with asyncio.timeout(delay):
                    await self._interrupt.wait()
            except TimeoutError:
                pass
            self._interrupt.clear()

    def _fail_over(self) -> bool:
        """Move to the next service; whether to try it at once (one not yet tried since the
        last ack or wait), else the caller waits its backoff first."""
        self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
        self._failed_in_a_row += 1
        if self._failed_in_a_row < len(self.urls):
            return True
        self._failed_in_a_row = 0
        return False

    def retry_now(self) -> None:
        """The agent is flushing before it exits: end the current backoff wait and keep
        later ones short."""
        self._flushing = True
        self._interrupt.set()

    async def connection(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_connected(self) -> None:
        self.connected = True
        log.info("connected to %s (%s)", self.url, self.backlog())

    def on_answer(self, answer: Any) -> None:
        """Apply one answer of the service to the spool; :class:`Disconnect` for a
        retryable error."""
        if not isinstance(answer, dict):
            raise Disconnect(f"unexpected answer {str(answer)[:200]!r}")
        if "ack" in answer:
            seq, run = answer.get("ack"), answer.get("run")
            if not isinstance(seq, int) or not isinstance(run, str):
                raise Disconnect(f"malformed acknowledgement {answer!r}")
            self.acked += 1
            self.backoff.reset()
            self._failed_in_a_row = 0
            if self.refusing is not None:
                log.info("the service accepts batches again")
                self.refusing = None
                self.refused_backoff.reset()
            self.spool.ack(run, seq)
            return
        code = str(answer.get("error", "error"))
        message = str(answer.get("message", ""))
        seq = answer.get("seq")
        if code in REFUSED_CODES:
            raise Refused(f"the service refused batch {seq} ({code}: {message})", f"{code}: {message}")
        if code in RETRY_CODES or not isinstance(seq, int):
            raise Disconnect(f"the service answered {code}: {message}")
        dropped = self.spool.discard(seq)
        self.refused += 1
        log.error(
            "the service refused batch %d (%s: %s); dropped its %d samples",
            seq,
            code,
            message,
            dropped.samples if dropped else 0,
        )


class WebSocketSender(Sender):
    """Batches as text frames on one WebSocket, up to ``window`` awaiting their ack."""

    def __init__(self, *args: Any, window: int = 32, heartbeat: float = 20.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = window
        self.heartbeat = heartbeat
        self._in_flight: dict[int, Entry] = {}
        self._room = asyncio.Event()

    async def connection(self) -> None:
        async with self.session.ws_connect(
            self.url, headers=self.headers, heartbeat=self.heartbeat, timeout=aiohttp.ClientWSTimeout(ws_close=5.0)
        ) as ws:
            self.on_connected()
            self._in_flight = {}
            sending = asyncio.create_task(self._send(ws))
            receiving = asyncio.create_task(self._receive(ws))
            try:
                done, _ = await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sending, receiving):
                    task.cancel()
                await asyncio.gather(sending, receiving, return_exceptions=True)
            for task in done:
                task.result()  # re-raise why the connection ended
            if ws.close_code is not None:
                raise Disconnect(f"closed by the service (code {ws.close_code})")

    async def _send(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        last_sent = -1
        while True:
            self.wake.clear()
            self._room.clear()
            room = self.window - len(self._in_flight)
            for entry in self.spool.pending(after=last_sent, limit=max(room, 0)):
                body = self.spool.checkout(entry)
                last_sent = entry.seq
                if body is None:  # dropped from a full spool meanwhile
                    continue
                self._in_flight[entry.seq] = entry
                await ws.send_str(body.decode())
            waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(self._room.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    answer = json.loads(msg.data)
                except ValueError:
                    raise Disconnect(f"the service sent non-JSON {msg.data[:200]!r}") from None
                if isinstance(answer, dict):
                    seq = answer.get("ack", answer.get("seq"))
                    if isinstance(seq, int):
                        self._in_flight.pop(seq, None)
                self.on_answer(answer)
                self._room.set()
            elif msg.type == aiohttp.WSMsgType.ERROR:
                raise Disconnect(f"WebSocket error: {ws.exception()}")
        raise Disconnect(f"closed by the service (code {ws.close_code})")


class HttpSender(Sender):
    """Batches posted one at a time to ``/ingest``."""

    def __init__(self, *args: Any, timeout: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.headers["Content-Type"] = "application/json"

    async def connection(self) -> None:
        while True:
            self.wake.clear()
            for entry in self.spool.pending(limit=64):
                body = self.spool.checkout(entry)
                if body is None:
                    continue
                await self._post(entry, body)
            if not len(self.spool):
                await self.wake.wait()

    async def _post(self, entry: Entry, body: bytes) -> None:
        async with self.session.post(self.url, data=body, headers=self.headers, timeout=self.timeout) as resp:
            text = await resp.text(errors="replace")
        if not self.connected:
            self.on_connected()
        if resp.status in (401, 403):
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("error") in REFUSED_CODES and isinstance(answer.get("seq"), int):
                self.on_answer(answer)  # a batch the token may not send: Refused
            raise Refused(
                f"the service refused the token (HTTP {resp.status}): {text.strip()[:200]}", f"HTTP {resp.status}"
            )
        if resp.status != 200 and resp.status not in REFUSED_STATUSES:
            # A wrong URL (404), a proxy, an outage, the token: nothing wrong with the batch.
            raise Disconnect(f"HTTP {resp.status}: {text.strip()[:200]}")
        try:
            answer = json.loads(text)
        except ValueError:
            raise Disconnect(f"HTTP {resp.status} with a non-JSON body {text[:200]!r}") from None
        if resp.status in REFUSED_STATUSES and isinstance(answer, dict) and answer.get("seq") is None:
            answer["seq"] = entry.seq  # refused before the service could read the seq
        self.on_answer(answer)


__all__ = ["Disconnect", "HttpSender", "Refused", "Sender", "WebSocketSender"]
