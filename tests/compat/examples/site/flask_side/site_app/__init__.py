"""A five-page site from templates: home, about, services, contact (a form), and a 404 page.

An example app for the compat suite (tests/compat/examples/site); quart_side/ holds its port.
The package is ``site_app``: a package named ``site`` would shadow Python's own ``site``.
"""

from __future__ import annotations

from flask import Flask, flash, redirect, render_template, request, send_from_directory, url_for

SERVICES = [
    ("Plumbing", "Taps, pipes and boilers, fixed the same week."),
    ("Gardening", "Hedges trimmed, lawns mown, leaves gone."),
    ("Painting", "Walls, fences and window frames, inside & out."),
]


def create_app():
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="dev")
    app.extensions["messages"] = messages = []

    @app.route("/")
    def home():
        return render_template("home.html")

    @app.route("/about")
    def about():
        return render_template("about.html")

    @app.route("/services")
    def services():
        return render_template("services.html", services=SERVICES)

    @app.route("/contact", methods=["GET", "POST"])
    def contact():
        errors = []
        if request.method == "POST":
            name = request.form.get("name", "").strip()
            email = request.form.get("email", "").strip()
            message = request.form.get("message", "").strip()
            if not name:
                errors.append("Please tell us your name.")
            if "@" not in email:
                errors.append("Please give an email address we can answer.")
            if not message:
                errors.append("The message is empty.")
            if not errors:
                messages.append({"name": name, "email": email, "message": message})
                flash(f"Thanks, {name}! We will write back to {email}.")
                return redirect(url_for("contact"))
        return render_template("contact.html", form=request.form, errors=errors), 400 if errors else 200

    @app.route("/robots.txt")
    def robots():
        return send_from_directory(app.static_folder, "robots.txt")

    @app.errorhandler(404)
    def not_found(e):
        return render_template("404.html", path=request.path), 404

    return app
