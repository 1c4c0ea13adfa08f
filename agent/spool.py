"""The on-disk spool: every batch stays here until the service has acknowledged it.

Layout of the spool directory::

    state.json            {"run": "<id>", "next_seq": N, "dropped": D}
    00000000000000000041.batch   one batch, the exact JSON body sent on the wire
    lock                  held (flock) while an agent uses the spool

Crash safety: a file is written to a temporary name, fsynced, renamed into place, and
the directory fsynced, so after a crash (SIGKILL, power loss) each batch file is whole
or absent, and ``state.json`` is the old or the new one. ``state.json`` is written
before the batch that uses its sequence number, and on opening ``next_seq`` is also
raised past every batch file present, so a seq is never used twice within a run (a
gap after a crash is harmless: the service only needs each ``(host, run, seq)`` once).

Damage: a ``state.json`` that cannot be read, or whose values are out of range (a negative
or bool ``next_seq`` or ``dropped``, one past the store's integers, a run id the service
refuses), starts a new run. A batch file that cannot be read, is not a batch, or whose
body's ``seq`` is not the one in its name (the service acknowledges the body's: such a file
was never forgotten and held every flush) is removed on opening, and its samples (one, when
the file is too damaged to tell) are added to the drop counter.

Bound: the batch files' bytes never exceed ``max_bytes``; to make room the oldest
batches go (those not yet sent before those awaiting their ack), and their samples are
added to the drop counter that later batches carry. A batch dropped while its ack was
on the way and then acknowledged is taken off the counter again: the counter says what
the service never got.

Methods are blocking (fsync) and thread-safe: the agent calls :meth:`append` in a worker
thread while its event loop acknowledges.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hostpulse.samples import MAX_INTEGER, is_count, valid_run, wire_bytes

try:  # Unix: one agent per spool
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("hostpulse.agent.spool")

STATE = "state.json"
SUFFIX = ".batch"


class SpoolError(RuntimeError):
    """The spool cannot be used (in use by another agent, not writable)."""


@dataclass(frozen=True)
class Entry:
    """A batch waiting for its acknowledgement."""

    seq: int
    run: str
    samples: int
    size: int
    path: Path


def new_run() -> str:
    """A random run id: 16 of A-Z a-z 0-9 _ - (what the service accepts as a run)."""
    return secrets.token_urlsafe(12)


def _fsync_dir(path: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and fsync it; return its name."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


class Spool:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._mutex = threading.Lock()
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool {self.path}: {exc.strerror}") from None
        self._lock_fd = self._take_lock()
        self._entries: dict[int, Entry] = {}
        self._sent: set[int] = set()  # checked out to the service, ack awaited
        self._gone_while_sent: dict[int, Entry] = {}  # evicted after being sent
        self.run, self.next_seq, self.dropped = self._load_state()
        self._scan()

    # -- opening ----------------------------------------------------------------------

    def _take_lock(self) -> int | None:
        if fcntl is None:  # pragma: no cover
            return None
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolError(
                f"the spool {self.path} is in use by another agent; give each agent its own --spool"
            ) from None
        return fd

    def _load_state(self) -> tuple[str, int, int]:
        path = self.path / STATE
        try:
            state = json.loads(path.read_bytes())
            run, next_seq, dropped = state["run"], state["next_seq"], state["dropped"]
            if not valid_run(run):
                raise ValueError(f"run {run!r} is not a run id")
            if not (is_count(next_seq) and is_count(dropped)):
                raise ValueError(f"next_seq {next_seq!r} and dropped {dropped!r} must be integers from 0 to 2**63-1")
            return run, next_seq, dropped
        except FileNotFoundError:
            run = new_run()
            log.info("new spool %s, run %s", self.path, run)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Whatever seq it held is unknown: a new run cannot collide with the old one.
            run = new_run()
            log.warning("spool state %s unreadable (%s): starting run %s", path, exc, run)
        self._save_state(run, 0, 0)
        return run, 0, 0

    def _scan(self) -> None:
        lost = 0
        for item in self.path.iterdir():
            if item.name.endswith(".tmp"):  # a write cut short by a crash: never acknowledged
                item.unlink(missing_ok=True)
                continue
            if not item.name.endswith(SUFFIX):
                continue
            samples = 1  # what a file too damaged to tell held, at least
            try:
                seq = int(item.name[: -len(SUFFIX)])
                body = json.loads(item.read_bytes())
                if not isinstance(body, dict) or not isinstance(body.get("samples"), list):
                    raise ValueError("not a batch")
                samples = max(1, len(body["samples"]))
                if not is_count(seq) or body.get("seq") != seq or isinstance(body.get("seq"), bool):
                    raise ValueError(f"its seq {body.get('seq')!r} is not the {seq} of its name")
                if not valid_run(body.get("run")):
                    raise ValueError(f"run {body.get('run')!r} is not a run id")
                entry = Entry(seq, body["run"], len(body["samples"]), item.stat().st_size, item)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("removing unreadable spool file %s (%s): %d samples counted as dropped", item, exc, samples)
                item.unlink(missing_ok=True)
                lost += samples
                continue
            self._entries[seq] = entry
        self._entries = dict(sorted(self._entries.items()))
        if self._entries:
            self.next_seq = max(self.next_seq, max(self._entries) + 1)
        if lost:
            self.dropped = min(self.dropped + lost, MAX_INTEGER)
            self._save_state(self.run, self.next_seq, self.dropped)

    # -- state ------------------------------------------------------------------------

    def _state_bytes(self, run: str, next_seq: int, dropped: int) -> bytes:
        return json.dumps({"run": run, "next_seq": next_seq, "dropped": dropped}).encode()

    def _save_state(self, run: str, next_seq: int, dropped: int) -> None:
        path = self.path / STATE
        tmp = _write_synced(path, self._state_bytes(run, next_seq, dropped))
        os.replace(tmp, path)
        _fsync_dir(self.path)

    # -- the queue --------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes of the batches waiting."""
        with self._mutex:
            return sum(e.size for e in self._entries.values())

    def __len__(self) -> int:
        with self._mutex:
            return len(self._entries)

    def pending(self, after: int = -1, limit: int | None = None) -> list[Entry]:
        """Batches waiting for an acknowledgement with ``seq > after``, oldest first.

        Entries are kept in seq order (appends only ever add a higher seq), so a sender
        that remembers the last seq it sent skips only what is still in flight.
        """
        found: list[Entry] = []
        if limit is not None and limit <= 0:
            return found
        with self._mutex:
            for seq, entry in self._entries.items():
                if seq > after:
                    found.append(entry)
                    if limit is not None and len(found) >= limit:
                        break
        return found

    def checkout(self, entry: Entry) -> bytes | None:
        """The batch's body, to be sent now; ``None`` if it is gone (acknowledged or
        dropped meanwhile). A batch checked out is dropped from a full spool only after
        every batch not yet sent."""
        with self._mutex:
            if entry.seq not in self._entries:
                return None
            self._sent.add(entry.seq)
            try:
                return entry.path.read_bytes()
            except FileNotFoundError:  # pragma: no cover - only if someone removed it
                return None

    def release(self) -> None:
        """The connection ended: no ack will come for what was sent on it."""
        with self._mutex:
            self._sent.clear()
            self._gone_while_sent.clear()

    def append(
        self,
        host: str,
        samples: Sequence[tuple[float, dict[str, float]]],
        *,
        interval: float | None = None,
        goodbye: bool = False,
    ) -> Entry | None:
        """Spool a new batch of ``(ts, values)`` samples; return it, once on disk.

        ``interval`` and ``goodbye`` are the batch's optional fields (``wire_form``).

        Makes room by dropping the oldest batches. Returns ``None`` when the batch alone
        is larger than the whole spool (it is dropped and counted).
        """
        with self._mutex:
            seq = self.next_seq
            evicted: list[Entry] = []
            # Oldest first, but batches already sent last: their ack may be on its way.
            waiting = [q for q in self._entries if q not in self._sent]
            waiting += [q for q in self._entries if q in self._sent]
            total = sum(e.size for e in self._entries.values())
            dropped = self.dropped
            while True:
                body = wire_bytes(host, self.run, seq, dropped, samples, interval=interval, goodbye=goodbye)
                if len(body) > self.max_bytes or total + len(body) <= self.max_bytes:
                    break
                oldest = self._entries[waiting[len(evicted)]]
                evicted.append(oldest)
                total -= oldest.size
                dropped += oldest.samples
            if len(body) > self.max_bytes:
                self.dropped += len(samples)
                self.next_seq = seq + 1
                self._save_state(self.run, self.next_seq, self.dropped)
                log.warning("dropped a batch of %d bytes: larger than the spool (%d bytes)", len(body), self.max_bytes)
                return None
            # The state first: a crash after it leaves a gap in seq, never a reused one.
            self.next_seq = seq + 1
            self.dropped = dropped
            self._save_state(self.run, self.next_seq, self.dropped)
            for old in evicted:
                del self._entries[old.seq]
                if old.seq in self._sent:
                    self._sent.discard(old.seq)
                    self._gone_while_sent[old.seq] = old
                old.path.unlink(missing_ok=True)
            path = self.path / f"{seq:020d}{SUFFIX}"
            tmp = _write_synced(path, body)
            os.replace(tmp, path)
            _fsync_dir(self.path)
            entry = Entry(seq, self.run, len(samples), len(body), path)
            self._entries[seq] = entry
        if evicted:
            lost = sum(e.samples for e in evicted)
            log.warning(
                "spool full (%d bytes): dropped the %d oldest batches (%d samples; %d dropped in all)",
                self.max_bytes,
                len(evicted),
                lost,
                dropped,
            )
        return entry

    def ack(self, run: str, seq: int) -> bool:
        """The service stored the batch: forget it. False if it was not waiting (an ack
        for a batch dropped meanwhile, or a repeated ack)."""
        with self._mutex:
            entry = self._entries.get(seq)
            if entry is None or entry.run != run:
                late = self._gone_while_sent.get(seq)
                if late is not None and late.run == run:
                    # Dropped from the full spool while its ack was on the way: it is
                    # stored after all, so it is not lost. Later batches carry the count.
                    del self._gone_while_sent[seq]
                    self.dropped -= late.samples
                    self._save_state(self.run, self.next_seq, self.dropped)
                return False
            del self._entries[seq]
            self._sent.discard(seq)
        # No fsync: if the unlink is lost in a power cut the batch is sent again and the
        # service, which stores each (host, run, seq) once, acknowledges it again.
        entry.path.unlink(missing_ok=True)
        return True

    def discard(self, seq: int) -> Entry | None:
        """The service refused the batch for good: drop it and count its samples."""
        with self._mutex:
            entry = self._entries.pop(seq, None)
            self._sent.discard(seq)
            if entry is None:
                return None
            self.dropped += entry.samples
            self._save_state(self.run, self.next_seq, self.dropped)
        entry.path.unlink(missing_ok=True)
        return entry

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


__all__ = ["Entry", "Spool", "SpoolError", "new_run"]
