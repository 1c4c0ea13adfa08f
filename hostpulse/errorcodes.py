"""The ``error`` codes of the service's JSON answers: one home for the service and the agent.

Standard library only, so the agent (the base install: no Werkzeug) reads the very names
the service writes. ``hostpulse/errors.py`` builds the answers around them (it needs
Werkzeug).
"""

from __future__ import annotations

from http import HTTPStatus

BAD_REQUEST = "bad_request"
MISSING_FIELD = "missing_field"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNPROCESSABLE_ENTITY = "unprocessable_entity"
TOO_MANY_REQUESTS = "too_many_requests"
INTERNAL_SERVER_ERROR = "internal_server_error"
SERVICE_UNAVAILABLE = "service_unavailable"

# Where Python's phrase is not the code the service answers (413 is "Request Entity Too Large" in 3.11).
CODES = {413: PAYLOAD_TOO_LARGE, 500: INTERNAL_SERVER_ERROR}


def error_code(status: int) -> str:
    """The status's reason in snake_case: 404 -> ``not_found``."""
    if status in CODES:
        return CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace("-", "_").replace(" ", "_").replace("'", "")


__all__ = [
    "BAD_REQUEST",
    "CODES",
    "FORBIDDEN",
    "INTERNAL_SERVER_ERROR",
    "MISSING_FIELD",
    "PAYLOAD_TOO_LARGE",
    "SERVICE_UNAVAILABLE",
    "TOO_MANY_REQUESTS",
    "UNAUTHORIZED",
    "UNPROCESSABLE_ENTITY",
    "error_code",
]
