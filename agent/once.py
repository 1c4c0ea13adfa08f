"""``--once``: seed 000's client. One POST of the JSON list of psutil results to ``/``.

The seed sent ``json.dumps([psutil.<name>() for name in argv])`` with urllib and exited;
this does the same (with the token the service now asks for) and prints the answer.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from .collect import read_once
from .settings import AgentSettings


async def post_once(settings: AgentSettings, names: tuple[str, ...]) -> int:
    """Exit status: 0 when the service answered 2xx, else 1 (the answer is printed either way)."""
    results = await asyncio.to_thread(read_once, names)
    body = json.dumps(results)
    headers = {"Authorization": f"Bearer {settings.token}", "Content-Type": "application/json"}
    url = settings.legacy_url
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.post(url, data=body, headers=headers) as resp:
                answer = await resp.text(errors="replace")
                status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"hostpulse-agent: cannot post to {url}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    print(answer)
    if status >= 300:
        print(f"hostpulse-agent: {url} answered HTTP {status}", file=sys.stderr)
        return 1
    return 0


__all__ = ["post_once"]
