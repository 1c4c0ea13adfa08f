"""The Flask version's resources: opened by ``create_app`` and reached by a typed accessor
each (as flaskr's ``get_db()``), never by a string key in a view.

Flask has no hook for a server's stop: the store's connections end with the worker, and
the jobs' containment guard kills what a stopped worker's jobs left
(``hostpulse/containment.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from hostpulse.health import StoreHealth, health_of
from hostpulse.instance import open_instance
from hostpulse.settings import Settings
from hostpulse.store import Store

from .jobs import JobRunner

KEY = "hostpulse"


@dataclass
class Resources:
    settings: Settings
    store: Store
    jobs: JobRunner
    health: StoreHealth


def open_resources(app: Flask, settings: Settings) -> Resources:
    """Open every resource of ``app``: the instance folder, the store, jobs, the health check."""
    store = open_instance(settings)
    resources = Resources(settings, store, JobRunner(settings, store), health_of(settings))
    app.extensions[KEY] = resources
    return resources


def get_resources() -> Resources:
    resources: Resources = current_app.extensions[KEY]
    return resources


def get_settings() -> Settings:
    return get_resources().settings


def get_store() -> Store:
    return get_resources().store


def get_jobs() -> JobRunner:
    return get_resources().jobs


def get_health() -> StoreHealth:
    return get_resources().health
