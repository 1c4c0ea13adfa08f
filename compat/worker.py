"""One side's app in its own interpreter, driven over a socket by :mod:`compat.sides`.

Started as ``python -m <package>.worker FD [--prepare]`` with ``$COMPAT_SIDE`` and
``$COMPAT_INSTANCE`` set. It builds the app (:mod:`compat.loading`), wraps it in a mutant
when asked, and answers requests through the server-faithful in-process clients of
:mod:`compat.clients`, one at a time. Warnings, errors and tracebacks the app logs while
a request is handled travel back with its reply, so a report can show them beside it.
``--prepare`` only runs the setup hook and reports the app's kind (a server builds the app).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from .clients import client_for, is_asgi_app
from .loading import SetupError, build_app, spec_from_env


class _Capture(logging.Handler):
    """Keeps what is logged at WARNING and above (with tracebacks) for the current request."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log line must never break a request
            pass

    def take(self) -> str:
        text = "\n".join(self.lines)
        self.lines.clear()
        return text


def _routes(app: Any) -> list:
    from .hints import route_rules

    return route_rules(getattr(app, "app", app))  # a mutant wraps the app


def serve(conn: Connection, prepare: bool) -> int:
    spec, instance = spec_from_env()
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    # the side's log file (this process's stderr) gets what the app logs too: with a handler
    # on the root logger, Flask and Quart add none of their own
    to_file = logging.StreamHandler(sys.stderr)
    to_file.setLevel(logging.WARNING)
    to_file.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    try:
        app, kwargs = build_app(spec, instance)
        if spec.wrap:
            from . import mutants

            mutants.SESSION_SECRET_KEY = spec.secret_key
            app = mutants.wrapper(spec.wrap)(app)
        kind = "asgi" if is_asgi_app(app) else "wsgi"
        client = None if prepare else client_for(app)
    except BaseException as exc:  # noqa: BLE001 -- the parent gets one line and the traceback
        line = str(exc) if isinstance(exc, SetupError) else f"{type(exc).__name__}: {exc}"
        conn.send(("failed", line, traceback.format_exc()))
        return 1
    try:  # a server's processes get them as JSON
        kwargs = json.loads(json.dumps(kwargs))
    except (TypeError, ValueError):
        kwargs = None
    info = {"kind": kind, "kwargs": kwargs, "log": capture.take()}
    if prepare:
        try:
            info["routes"] = _routes(app)
        except Exception as exc:  # noqa: BLE001 -- an app without a url_map has no routes to learn
            info["routes"], info["routes_error"] = [], f"{type(exc).__name__}: {exc}"
    conn.send(("ready", info))
    if client is None:
        return 0
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return 0
            op = message[0]
            if op == "request":
                _, method, path, headers, body = message
                capture.take()
                try:
                    reply = client.request(method, path, headers=headers, body=body)
                except Exception as exc:  # the app broke the protocol: the parent reports it
                    conn.send(("error", f"{type(exc).__name__}: {exc}", capture.take() + "\n" + traceback.format_exc()))
                    continue
                conn.send(("reply", replace(reply, log=capture.take())))
            elif op == "routes":
                try:
                    conn.send(("routes", _routes(app)))
                except Exception as exc:  # noqa: BLE001 -- the parent decides what it means
                    conn.send(("error", f"routes: {type(exc).__name__}: {exc}", traceback.format_exc()))
            elif op == "stats":
                conn.send(("stats", {"applied": getattr(app, "applied", 0)}))
            elif op == "close":
                return 0
    finally:
        client.close()
        conn.send(("closed", capture.take()))


def main() -> int:
    fd = int(sys.argv[1])
    conn = Connection(fd)
    try:
        return serve(conn, "--prepare" in sys.argv[2:])
    except (BrokenPipeError, ConnectionResetError, OSError):
        return 0
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
