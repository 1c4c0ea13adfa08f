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
"""

from __future__ import annotations

import logging
import threading
import time

from hostpulse import settings as settings_module
from hostpulse.settings import Settings, SettingsError, file_stamp

log = logging.getLogger("hostpulse.reload")

# Seconds between two looks at the config file's stamp (one stat), per worker: a change
# is seen by the next request at most this long after it.
CHECK_EVERY = 0.5

_reloading = threading.Lock()


def refresh(settings: Settings, now: float | None = None) -> bool:
    """Read tokens and commands again if the config file changed; True when they were."""
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


__all__ = ["CHECK_EVERY", "refresh"]
