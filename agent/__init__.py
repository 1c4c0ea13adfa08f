"""hostpulse-agent: streams this host's psutil metrics to a hostpulse service.

Collect, batch, spool on disk, send, wait for the acknowledgement, keep what is not
acknowledged and send it again after a reconnect. Needs only aiohttp, psutil,
``hostpulse.samples`` (the batches' wire form) and ``hostpulse.errorcodes`` (the service's
error codes), both standard library, so a monitored host installs nothing of the server.
"""

__all__: list[str] = []
