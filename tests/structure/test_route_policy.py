"""The role table (``hostpulse.auth``), the apps' url maps and the README's route tables agree.

The table keys routes by rule string, far from the routes themselves: without this test a
route added to an app would silently need admin (the default), and an entry for a route
gone would linger. ``RESERVED`` holds the routes decided ahead that no app has yet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import app as quart_app
from compat import flask_app
from hostpulse.auth import RESERVED, ROUTES
from hostpulse.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# HEAD follows GET and OPTIONS is public (hostpulse.auth.required_role): not in the table.
IMPLIED = {"HEAD", "OPTIONS"}
Routes = dict[tuple[str, str], list[str]]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("apps")
    return {
        "quart": quart_app.create_app(settings=Settings(instance=folder / "quart")),
        "flask": flask_app.create_app(settings=Settings(instance=folder / "flask")),
    }


def handler(app: Any, endpoint: str, method: str) -> str:
    """``views/data.py:Data.post``: the file within the app's package and the function."""
    view = app.view_functions[endpoint]
    cls = getattr(view, "view_class", None)  # a MethodView: its method for this verb
    module, name = (
        (cls.__module__, f"{cls.__qualname__}.{method.lower()}") if cls else (view.__module__, view.__qualname__)
    )
    return module.removeprefix(app.import_name + ".").replace(".", "/") + ".py:" + name


def routes(app: Any) -> Routes:
    """(rule, method) -> the handlers, for every route of ``app``; a WebSocket is a GET."""
    found: Routes = {}
    for rule in app.url_map.iter_rules():
        for method in sorted(set(rule.methods or ()) - IMPLIED):
            found.setdefault((rule.rule, method), []).append(handler(app, rule.endpoint, method))
    return found


def test_every_route_of_each_app_has_a_role(apps: dict[str, Any]) -> None:
    for name, app in apps.items():
        for key in routes(app):
            assert key not in RESERVED, f"{name} serves {key}: move it from RESERVED to ROUTES"
            assert key in ROUTES, f"{name} serves {key}, which has no role in hostpulse.auth.ROUTES (admin by default)"


def test_every_role_names_a_route_of_an_app(apps: dict[str, Any]) -> None:
    served = {key for app in apps.values() for key in routes(app)}
    assert set(ROUTES) - served == set(), "roles for routes no app has (reserve them in RESERVED, or remove them)"


def test_reserved_routes_are_served_by_no_app(apps: dict[str, Any]) -> None:
    assert set(RESERVED) == set()  # /ws/live, the last one, is served (app/views/dashboard.py)
    assert not set(RESERVED) & set(ROUTES)
    for app in apps.values():
        assert not set(RESERVED) & set(routes(app))


def test_the_port_has_every_flask_route_with_the_same_handler(apps: dict[str, Any]) -> None:
    port, flask = routes(apps["quart"]), routes(apps["flask"])
    for key, handlers in flask.items():
        assert key in port, f"the port lacks {key}"
        assert port[key] == handlers, f"{key}: the README names one handler for both apps"


def readme_rows() -> list[tuple[list[tuple[str, str]], str, list[str]]]:
    """The README's route tables: per row, its (method, rule) pairs, role and handlers."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Routes\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        pairs = [
            (method, rule)
            for methods, rule in re.findall(r"`([A-Z]+(?:, [A-Z]+)*) (/[^`]*)`", cells[0])
            for method in methods.split(", ")
        ]
        rows.append((pairs, cells[1], re.findall(r"`([^`]+\.py:[^`]+)`", cells[2])))
    return rows


def test_the_readme_route_tables(apps: dict[str, Any]) -> None:
    port = routes(apps["quart"])
    rows = readme_rows()
    documented = set()
    for pairs, role, handlers in rows:
        assert pairs and handlers, (pairs, role, handlers)
        expected: list[str] = []
        for method, rule in pairs:
            key = (rule, "GET" if method == "WS" else method)
            documented.add(key)
            assert key in ROUTES, f"the README lists {method} {rule}, which no app has"
            assert (ROUTES[key] or "public") == role, f"{method} {rule}: the README says {role}"
            expected += [h for h in port[key] if h not in expected]
        assert handlers == expected, f"{pairs}: the README's handlers"
    assert documented == set(ROUTES), "routes missing from the README's tables"
