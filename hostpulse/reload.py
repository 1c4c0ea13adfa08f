"""Tokens and the command allow-list follow the config file while the service runs.

README, "Changes at run time": a token added or revoked (``hostpulse
token-add`` / ``token-revoke``, or an edit of the file) takes effect in every worker within
2 s, without a restart. Each worker looks at the file's ``os.stat`` stamp at most every
:data:`CHECK_EVERY` seconds, from the token check every request goes through
(:func:`hostpulse.auth.authorize`), so both apps and every server follow it with no
thread or task of their own. When the stamp changed, the whole file is loaded and
validated again as at start; its ``[[tokens]]`` and ``[[commands]]`` replace the running
ones in place (the settings object every part of the app holds). Every other key (limits,
jobs, store) is read at start only. A file that no longer loads keeps the running tokens
and commands, and says why once per change.

On PostgreSQL (issue 16) tokens and commands live in the database, shared by every node
(``hostpulse.tokens_store``): the counterpart of the file's stamp is the ``config_version``
row, which each token change bumps. A query must not run on the event loop (a far or
stalled server would hold every request), so a thread per worker process polls that row
every :data:`CHECK_EVERY` seconds and, when it moved, loads tokens and commands and replaces
the running ones; :func:`refresh` only makes sure that thread runs in this process (a
forked worker has none). A revoke on one node is refused by every node within about
``CHECK_EVERY`` plus a query. A database that cannot be reached keeps the running tokens
(an error is logged once, until it answers again).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from hostpulse import settings as settings_module
from hostpulse.settings import Settings, SettingsError, StoreSource, file_stamp

log = logging.getLogger("hostpulse.reload")

# Seconds between two looks at the config file's stamp (one stat), per worker: a change
# is seen by the next request at most this long after it.
CHECK_EVERY = 0.5

_reloading = threading.Lock()


def refresh(settings: Settings, now: float | None = None) -> bool:
    """Read tokens and commands again if the config file changed; True when they were.
    On PostgreSQL: make sure this process polls the store (:func:`follow_store`)."""
    if settings.store_source is not None:
        follow_store(settings, settings.store_source)
        return False
    source = settings.source
    if source is None:
        return False
    now = time.monotonic() if now is None else now
    if now - source.checked < CHECK_EVERY:
        return False
    if not _reloading.acquire(blocking=False):  # another thread is at it: use what is there
        return False
    try:
        source.checked = now
        stamp = file_stamp(source.path)
        if stamp == source.stamp:
            return False
        source.stamp = stamp
        try:
            fresh = settings_module.load(settings.instance, {"HOSTPULSE_CONFIG": str(source.path)})
        except SettingsError as exc:
            log.error("%s changed but cannot be used (%s): the running tokens and commands stay", source.path, exc)
            return False
        changed = fresh.tokens != settings.tokens or fresh.commands != settings.commands
        settings.tokens, settings.commands = fresh.tokens, fresh.commands
        if changed:
            log.info(
                "%s changed: %d tokens, %d allowed commands now", source.path, len(fresh.tokens), len(fresh.commands)
            )
        return changed
    finally:
        _reloading.release()


def follow_store(settings: Settings, source: StoreSource) -> None:
    """Start this process's poller of the store's ``config_version``, unless it runs."""
    poller = source.poller
    if poller is not None and source.pid == os.getpid() and poller.is_alive():
        return
    with _reloading:
        if source.poller is not None and source.pid == os.getpid() and source.poller.is_alive():
            return
        source.pid = os.getpid()
        source.poller = threading.Thread(
            target=_poll_store, args=(settings, source), name="hostpulse-tokens", daemon=True
        )
        source.poller.start()


def stop_following(settings: Settings) -> None:
    """The app stops serving: its poller ends at its next look (tests open many apps)."""
    source = settings.store_source
    if source is not None:
        source.pid = -1


def _poll_store(settings: Settings, source: StoreSource) -> None:
    import psycopg

    from hostpulse import tokens_store
    from hostpulse.store_pg import connect

    conn: psycopg.Connection[object] | None = None
    failing = False
    while source.pid == os.getpid():
        time.sleep(CHECK_EVERY)
        try:
            if conn is None or conn.closed or conn.broken:
                conn = connect(source.url)
            if tokens_store.version(conn) == source.version:
                failing = False
                continue
            seen, tokens, commands = tokens_store.load(conn)
        except Exception as exc:  # the database away: the running tokens stay
            if not failing:
                log.error("cannot read tokens from the PostgreSQL store (%s): the running tokens stay", exc)
            failing = True
            if conn is not None:
                conn.close()
                conn = None
            continue
        failing = False
        changed = tokens != settings.tokens or commands != settings.commands
        settings.tokens, settings.commands = tokens, commands
        source.version = seen
        if changed:
            log.info("the store's tokens changed: %d tokens, %d allowed commands now", len(tokens), len(commands))
    if conn is not None:
        conn.close()


__all__ = ["CHECK_EVERY", "follow_store", "refresh", "stop_following"]
