"""A minimal CSRF guard: one random token per session, checked on every POST."""

from __future__ import annotations

import secrets

from quart import abort, request, session


def csrf_token() -> str:
    """The session's token (made on first use); templates call it in every POST form."""
    if "csrf_token" not in session:
        session["csrf_token"] = secrets.token_urlsafe(24)
    return session["csrf_token"]


async def check_csrf():
    if request.method != "POST":
        return None
    form = await request.form
    sent = form.get("csrf_token", "")
    expected = session.get("csrf_token", "")
    if not sent or not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        abort(400, "The CSRF token is missing or invalid.")
    return None


def init_app(app) -> None:
    app.before_request(check_csrf)
    app.add_template_global(csrf_token, "csrf_token")
