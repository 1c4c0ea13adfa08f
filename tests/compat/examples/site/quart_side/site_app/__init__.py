"""The five-page site of flask_side/ ported to Quart, answering the same way.

Ported as Quart's migration guide says: ``from quart import ...``, ``async def`` views,
``await request.form``, ``await render_template(...)``, ``await flash(...)``,
``await send_from_directory(...)``. The package is ``site_app`` on both sides.
"""

from __future__ import annotations

from quart import Quart, flash, redirect, render_template, request, url_for

from . import flask_parity

SERVICES = [
    ("Plumbing", "Taps, pipes and boilers, fixed the same week."),
    ("Gardening", "Hedges trimmed, lawns mown, leaves gone."),
    ("Painting", "Walls, fences and window frames, inside & out."),
]


def create_app():
    app = Quart(__name__)
    app.config.from_mapping(
        SECRET_KEY="dev",
        MAX_CONTENT_LENGTH=None,  # Flask's default: no body limit (Quart's is 16 MiB, then 413)
        SEND_FILE_MAX_AGE_DEFAULT=None,  # Flask's default: files go out with no max age (Quart's: 12 h)
    )
    flask_parity.install(app)  # Vary: Cookie, static file headers, 204/304 headers as Flask sends them
    app.extensions["messages"] = messages = []

    @app.route("/")
    async def home():
        return await render_template("home.html")

    @app.route("/about")
    async def about():
        return await render_template("about.html")

    @app.route("/services")
    async def services():
        return await render_template("services.html", services=SERVICES)

    @app.route("/contact", methods=["GET", "POST"])
    async def contact():
        errors = []
        form = await request.form
        if request.method == "POST":
            name = form.get("name", "").strip()
            email = form.get("email", "").strip()
            message = form.get("message", "").strip()
            if not name:
                errors.append("Please tell us your name.")
            if "@" not in email:
                errors.append("Please give an email address we can answer.")
            if not message:
                errors.append("The message is empty.")
            if not errors:
                messages.append({"name": name, "email": email, "message": message})
                await flash(f"Thanks, {name}! We will write back to {email}.")
                return redirect(url_for("contact"))
        return await render_template("contact.html", form=form, errors=errors), 400 if errors else 200

    @app.route("/robots.txt")
    async def robots():
        # Flask's send_from_directory headers (inline, no-cache, Accept-Ranges), see flask_parity
        return await flask_parity.send_from_directory(app.static_folder, "robots.txt")

    @app.errorhandler(404)
    async def not_found(e):
        return await render_template("404.html", path=request.path), 404

    return app
