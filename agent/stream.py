"""The long-running agent: collect every interval, spool each batch, send, until a signal.

Two tasks share the spool: the collector appends a batch every ``batch`` samples and
wakes the sender; the sender sends what is waiting and forgets what is acknowledged.
On SIGTERM or SIGINT collection stops (a partial batch is spooled), the sender gets up
to ``flush_timeout`` seconds to empty the spool (none while the service refuses the token:
it would refuse the flush too), and the agent exits 0; whatever is left stays in the spool
for the next start. Once the spool is empty, one last batch says goodbye (``"goodbye": true``,
no samples), so the service shows the host ``down`` at once; it gets ``GOODBYE_TIMEOUT`` seconds
and is not kept for the next start.

Every batch carries ``interval``: the seconds between this agent's batches (``--interval``
times ``--batch``), from which the service tells an ``up`` host from a ``stale`` or ``down`` one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable, Sequence

import aiohttp

from hostpulse.samples import DEFAULT_LIMITS, Limits

from .collect import Collector
from .settings import AgentSettings, endpoint
from .spool import Spool
from .transport import HttpSender, Sender, WebSocketSender

log = logging.getLogger("hostpulse.agent")

FIRST_SAMPLE_AFTER = 1.0  # seconds; CPU percentages need a short window to mean something
STATUS_EVERY = 600.0  # seconds between status lines in the log
GOODBYE_TIMEOUT = 5.0  # seconds the goodbye batch may take to be acknowledged

Samples = Sequence[tuple[float, dict[str, float]]]


def split_batch(samples: Samples, limits: Limits = DEFAULT_LIMITS) -> list[Samples]:
    """Cut a batch into parts the service accepts (its value and byte caps, with room to
    spare), so a large ``--batch`` of many series is never refused as too large."""
    parts: list[Samples] = []
    part: list[tuple[float, dict[str, float]]] = []
    values = size = 0
    for ts, sample in samples:
        count, length = len(sample), len(json.dumps(sample)) + 40
        if part and (values + count > limits.max_values or size + length > limits.max_bytes // 2):
            parts.append(part)
            part, values, size = [], 0, 0
        part.append((ts, sample))
        values += count
        size += length
    if part:
        parts.append(part)
    return parts


def batch_interval(settings: AgentSettings) -> float:
    """The seconds between this agent's batches, as each batch says it (``interval``)."""
    return settings.interval * settings.batch


async def spool_batch(settings: AgentSettings, spool: Spool, samples: Samples, wake: asyncio.Event) -> None:
    for part in split_batch(samples):
        await asyncio.to_thread(spool.append, settings.host, part, interval=batch_interval(settings))
    wake.set()


async def say_goodbye(settings: AgentSettings, spool: Spool, sender: Sender, wake: asyncio.Event) -> bool:
    """Send the goodbye batch (no samples) and wait for its ack; one not acknowledged in
    time is taken out of the spool, so the next start does not send a stale goodbye."""
    entry = await asyncio.to_thread(spool.append, settings.host, [], interval=batch_interval(settings), goodbye=True)
    if entry is None:
        return False
    wake.set()
    sender.retry_now()
    if await flush(spool, min(settings.flush_timeout, GOODBYE_TIMEOUT), sender):
        return True
    await asyncio.to_thread(spool.discard, entry.seq)
    return False


async def collect_loop(
    settings: AgentSettings, collector: Collector, spool: Spool, wake: asyncio.Event, stop: asyncio.Event
) -> None:
    """Sample on a fixed schedule (no drift), spool full batches, spool the rest on stop."""
    loop = asyncio.get_running_loop()
    buffer: list[tuple[float, dict[str, float]]] = []
    next_at = loop.time() + min(settings.interval, FIRST_SAMPLE_AFTER)
    while True:
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
            break
        except TimeoutError:
            pass
        ts, values = await asyncio.to_thread(collector.collect)
        if values:
            buffer.append((ts, values))
        if len(buffer) >= settings.batch:
            await spool_batch(settings, spool, buffer, wake)
            buffer = []
        next_at += settings.interval
        if next_at < loop.time():  # the host was too busy (or suspended): skip, don't burst
            missed = int((loop.time() - next_at) // settings.interval) + 1
            log.warning("collection fell %d interval(s) behind; skipping them", missed)
            next_at += missed * settings.interval
    if buffer:
        await spool_batch(settings, spool, buffer, wake)


async def status_loop(sender: Sender, spool: Spool) -> None:
    """Now and then, one line a person watching the log can read the agent's health from."""
    while True:
        await asyncio.sleep(STATUS_EVERY)
        log.info(
            "status: %s, %d batches acknowledged since start, %d refused, %s, %d samples dropped",
            "connected" if sender.connected else "not connected",
            sender.acked,
            sender.refused,
            sender.backlog(),
            spool.dropped,
        )


def make_sender(settings: AgentSettings, spool: Spool, session: aiohttp.ClientSession, wake: asyncio.Event) -> Sender:
    """The transport's sender, over every service given (in order: it fails over between them)."""
    if settings.transport == "http":
        urls = [endpoint(server, "/ingest", websocket=False) for server in settings.servers]
        return HttpSender(urls, settings.token, spool, session, wake)
    urls = [endpoint(server, "/ws/agent", websocket=True) for server in settings.servers]
    return WebSocketSender(urls, settings.token, spool, session, wake)


async def flush(spool: Spool, timeout: float, sender: Sender | None = None) -> bool:  # noqa: ASYNC109 -- a deadline for the polling below
    """Wait up to ``timeout`` seconds for the sender to empty the spool; not at all while
    the service refuses the token."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # the spool has no event for "emptied" (the sender and the collector both change it)
    while len(spool) and loop.time() < deadline and not (sender is not None and sender.refusing):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return not len(spool)


async def run(settings: AgentSettings, spool: Spool, on_ready: Callable[[], None] | None = None) -> int:
    """Stream until SIGTERM/SIGINT; return the exit status (0)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    collector = await asyncio.to_thread(Collector, settings.names)
    wake = asyncio.Event()
    if len(spool):
        wake.set()
    log.info(
        "hostpulse-agent: host %s, run %s, every %g s, %d series groups (%s), sending to %s; "
        "spool %s holds %d batches, %d dropped so far",
        settings.host,
        spool.run,
        settings.interval,
        len(collector.names),
        ", ".join(collector.names),
        " then ".join(settings.servers),
        spool.path,
        len(spool),
        spool.dropped,
    )
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        sender = make_sender(settings, spool, session, wake)
        sending = asyncio.create_task(sender.run(), name="send")
        reporting = asyncio.create_task(status_loop(sender, spool), name="status")
        collecting = asyncio.create_task(collect_loop(settings, collector, spool, wake, stop), name="collect")
        if on_ready:
            on_ready()
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({collecting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if collecting in done and not stop.is_set():  # collection crashed: stop all the same
            stop.set()
            log.error("collection failed: %r", collecting.exception())
        await asyncio.gather(collecting, stopped, return_exceptions=True)
        if sender.refusing:
            log.info("stopping on %s: the service refuses the token, no flush", "/".join(received) or "error")
        else:
            log.info(
                "stopping on %s: flushing %d batches for up to %g s",
                "/".join(received) or "error",
                len(spool),
                settings.flush_timeout,
            )
            sender.retry_now()
        if await flush(spool, settings.flush_timeout, sender):
            log.info("all batches acknowledged; %d sent this run", sender.acked)
            if not sender.refusing:
                said = await say_goodbye(settings, spool, sender, wake)
                log.info("goodbye %s", "acknowledged" if said else "not acknowledged in time: left out")
        else:
            log.warning("%d batches left in the spool for the next start (%d bytes)", len(spool), spool.size)
        sending.cancel()
        reporting.cancel()
        await asyncio.gather(sending, reporting, return_exceptions=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    return 0


__all__ = ["batch_interval", "collect_loop", "flush", "make_sender", "run", "say_goodbye", "split_batch"]
