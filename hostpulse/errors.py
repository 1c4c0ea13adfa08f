"""Every error is JSON: ``{"error": code, "message": text}``; one description for both apps.

``ApiError`` is a Werkzeug ``HTTPException``, so Flask and Quart both send it through
their HTTP-exception handler, and each app needs a single handler calling
:func:`describe`. The codes themselves are in ``hostpulse.errorcodes`` (no Werkzeug there:
the agent reads them too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import HTTPException

from hostpulse.errorcodes import INTERNAL_SERVER_ERROR, error_code

INTERNAL_MESSAGE = "The server hit an error it could not handle; it has been logged."


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

    def body(self) -> dict[str, Any]:
        """The JSON body sent for it: ``error``, ``message`` and any extra fields."""
        return {"error": self.error, "message": self.description, **self.extra}

    @classmethod
    def from_body(cls, status: int, body: Mapping[str, Any]) -> ApiError:
        """The error back from its status and :meth:`body` (one decoded in another process)."""
        fields = dict(body)
        return cls(status, fields.pop("error"), fields.pop("message"), **fields)


def describe(exc: HTTPException) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """Status, JSON body and the headers to keep (``Allow``, ``WWW-Authenticate``, ...)."""
    status = exc.code or 500
    if isinstance(exc, ApiError):
        return status, exc.body(), list(exc.extra_headers.items())
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    return status, {"error": error_code(status), "message": exc.description or ""}, headers


def internal_error() -> dict[str, str]:
    return {"error": INTERNAL_SERVER_ERROR, "message": INTERNAL_MESSAGE}


def invalid_json(detail: str) -> ApiError:
    return ApiError(400, "invalid_json", f"the body is not valid JSON: {detail}")


def missing_field(name: str) -> ApiError:
    return ApiError(400, "missing_field", f"the field {name!r} is required")


def upgrade_required(path: str) -> ApiError:
    """A plain GET on a WebSocket route: Werkzeug's bare 400 would not say what it speaks."""
    return ApiError(
        426,
        "upgrade_required",
        f"{path} speaks WebSocket: connect with Upgrade: websocket",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )
