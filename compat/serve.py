"""What a live server is given: ``<package>.serve:app``, the side's app built in the
server's own process from ``$COMPAT_SIDE`` and ``$COMPAT_INSTANCE`` (the factory's keyword
arguments were fixed once by the setup hook, so every worker builds the same app)."""

from __future__ import annotations

from .loading import build_app, spec_from_env

_spec, _instance = spec_from_env()
app, _kwargs = build_app(_spec, _instance)
