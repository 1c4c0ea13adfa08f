"""Every error is JSON: ``{"error": code, "message": text}``; one description for both apps.

``ApiError`` is a Werkzeug ``HTTPException``, so Flask and Quart both send it through
their HTTP-exception handler, and each app needs a single handler calling
:func:`describe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import HTTPException

# Where Python's phrase is not the code SPEC names (413 is "Request Entity Too Large" in 3.11).
CODES = {413: "payload_too_large", 500: "internal_server_error"}

INTERNAL_MESSAGE = "The server hit an error it could not handle; it has been logged."


def error_code(status: int) -> str:
    """The status's reason in snake_case: 404 -> ``not_found``."""
    if status in CODES:
        return CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace("-", "_").replace(" ", "_").replace("'", "")


class ApiError(HTTPException):
    """An error with a code of its own (``invalid_json``, ``command_rejected``, ...)."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        /,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(description=message)
        self.code = status
        self.error = error
        self.extra = extra
        self.extra_headers = dict(headers or {})


def describe(exc: HTTPException) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """Status, JSON body and the headers to keep (``Allow``, ``WWW-Authenticate``, ...)."""
    status = exc.code or 500
    if isinstance(exc, ApiError):
        body = {"error": exc.error, "message": exc.description, **exc.extra}
        return status, body, list(exc.extra_headers.items())
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    return status, {"error": error_code(status), "message": exc.description or ""}, headers


def internal_error() -> dict[str, str]:
    return {"error": "internal_server_error", "message": INTERNAL_MESSAGE}


def invalid_json(detail: str) -> ApiError:
    return ApiError(400, "invalid_json", f"the body is not valid JSON: {detail}")


def missing_field(name: str) -> ApiError:
    return ApiError(400, "missing_field", f"the field {name!r} is required")
