"""The instance folder as both apps open it at start: folders made, leftovers swept, the
store opened.

One function for both ``create_app``\\ s, so the Flask version and the port start from the
same state: the part files of uploads a killed server cut short (``.part-<pid>-*``, which
nothing else would ever remove) go before the first request.
"""

from __future__ import annotations

import logging

from hostpulse.settings import Settings
from hostpulse.store import Store
from hostpulse.store_url import open_store
from hostpulse.uploads import sweep_parts

log = logging.getLogger("hostpulse")


def open_instance(settings: Settings) -> Store:
    """Make the instance, uploads and scripts folders, sweep dead part files, open the store
    ``[store] url`` names (``hostpulse.store_url.open_store``)."""
    for folder in (settings.instance, settings.uploads, settings.scripts):
        folder.mkdir(parents=True, exist_ok=True)
    removed = sweep_parts(settings.uploads)
    if removed:
        log.warning("uploads: removed %d part file(s) of uploads cut short: %s", len(removed), ", ".join(removed))
    return open_store(settings)
