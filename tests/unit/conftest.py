"""Unit tests run against whatever build of the core is installed: catch a
compiled module that is older than its source, which would test stale code."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

CORE = (
    "vocabulary",
    "events",
    "cart",
    "sessions",
    "records",
    "abandonment",
    "tally",
    "rules",
    "engine",
    "replay",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = []
    for name in CORE:
        module = importlib.import_module(f"streamfunnel.{name}")
        built = Path(module.__file__ or "")
        source = built.with_name(f"{name}.py")
        if built.suffix == ".so" and source.stat().st_mtime > built.stat().st_mtime:
            stale.append(name)
    if stale:
        raise pytest.UsageError(
            f"compiled streamfunnel modules are older than their source: "
            f"{', '.join(stale)}; rebuild with `make venv` (or `pip install -e .`)"
        )
