"""Register, log in, log out; the logged-in user of every request."""

from __future__ import annotations

import functools

from quart import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from .db import get_db

bp = Blueprint("auth", __name__, url_prefix="/auth")


def login_required(view):
    """Send anonymous visitors to the login page."""

    @functools.wraps(view)
    async def wrapped_view(**kwargs):
        if g.user is None:
            return redirect(url_for("auth.login"))
        return await view(**kwargs)

    return wrapped_view


@bp.before_app_request
def load_logged_in_user():
    """Put the user whose id is in the session (or None) into ``g.user``.

    DELIBERATELY WRONG: a sync hook. Quart runs it on a worker thread, so the sqlite3
    connection it opens (kept in ``g``) belongs to that thread; the views then use it on the
    event loop's thread and sqlite3 raises ProgrammingError (a 500) for a logged-in user.
    """
    user_id = session.get("user_id")
    if user_id is None:
        g.user = None
    else:
        g.user = get_db().execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone()


@bp.route("/register", methods=("GET", "POST"))
async def register():
    form = await request.form
    if request.method == "POST":
        username = form.get("username", "").strip()
        password = form.get("password", "")
        db = get_db()
        error = None
        if not username:
            error = "Username is required."
        elif not password:
            error = "Password is required."
        if error is None:
            try:
                db.execute(
                    "INSERT INTO user (username, password) VALUES (?, ?)",
                    (username, generate_password_hash(password)),
                )
                db.commit()
            except db.IntegrityError:
                error = f"User {username} is already registered."
            else:
                await flash("Registered. You can log in now.")
                return redirect(url_for("auth.login"))
        await flash(error)
    return await render_template("auth/register.html", form=form)


@bp.route("/login", methods=("GET", "POST"))
async def login():
    form = await request.form
    if request.method == "POST":
        username = form.get("username", "").strip()
        password = form.get("password", "")
        user = get_db().execute("SELECT * FROM user WHERE username = ?", (username,)).fetchone()
        error = None
        if user is None or not check_password_hash(user["password"], password):
            error = "Incorrect username or password."
        if error is None:
            session.clear()
            session["user_id"] = user["id"]
            return redirect(url_for("index"))
        await flash(error)
    return await render_template("auth/login.html", form=form)


@bp.route("/logout")
async def logout():
    session.clear()
    return redirect(url_for("index"))
