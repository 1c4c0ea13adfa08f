"""Seed 002's pages and seed 000's legacy metrics post on ``/``."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, request, url_for

from hostpulse.payloads import legacy_echo, legacy_list

from ..resources import get_store

bp = Blueprint("pages", __name__)


@bp.get("/")
def hello_world() -> str:
    return "Hello, World!"


@bp.post("/")
def legacy_post() -> Response:
    data = request.get_data()
    if legacy_list(data):
        get_store().add_legacy_post(g.user.username, data.decode("utf-8", "replace"))
    return Response(legacy_echo(data), mimetype="text/plain")


@bp.get("/usrname")
def admin() -> Response:
    return redirect(url_for("pages.login"))


@bp.get("/login")
def login() -> str:
    return "Please login first"


@bp.get("/regist")
def regist() -> str:
    return "Registration is not open yet"
