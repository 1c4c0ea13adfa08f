"""A pytest plugin that runs the contract tests (``tests/contract``) against a ported app.

``PORTER_CONTRACT_APP=DEST:flask_app python -m pytest tests/contract -p tests.porter.contract_plugin``
imports ``flask_app`` from ``DEST`` (the porter's output of ``compat/flask_app``) and runs
every contract test's ASGI flavour on it: the conftest's ``quart`` factory is replaced by the
ported ``create_app`` and the ``flask`` items are deselected, so the tests drive the ported
app exactly as they drive the hand-written port (``compat.clients``, ASGI with lifespan).
Nothing in ``tests/contract`` is edited for it.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest

VAR = "PORTER_CONTRACT_APP"


def _target() -> tuple[str, str]:
    value = os.environ.get(VAR, "")
    folder, _, module = value.rpartition(":")
    if not folder or not module:
        raise pytest.UsageError(f"${VAR} must be DEST:MODULE (the folder holding the ported package, its name)")
    return folder, module


def pytest_configure(config: pytest.Config) -> None:
    folder, _ = _target()
    if folder not in sys.path:
        sys.path.insert(0, folder)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    folder, module = _target()
    ported = importlib.import_module(module)
    conftest = sys.modules.get("tests.contract.conftest")
    if conftest is None:
        raise pytest.UsageError("the contract conftest is not loaded: run tests/contract")
    conftest.FACTORIES["quart"] = ported.create_app
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        flavour = callspec.params.get("flavour") if callspec is not None else None
        (drop if flavour == "flask" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
