"""Prometheus and promtool (Debian's packages), and the expressions we ship.

CI installs both, so there a missing binary is a broken setup rather than a
reason to skip; elsewhere the skip says how to get them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.local_broker import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules.yml"
DASHBOARD_FILE = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "streamfunnel.json"

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
REQUIRED = os.environ.get("CI", "").lower() == "true"
TOOL_TIMEOUT_S = 60.0

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not REQUIRED,
    reason="promtool is not on PATH (Debian: apt-get install prometheus)",
)
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None and not REQUIRED,
    reason="prometheus is not on PATH (Debian: apt-get install prometheus)",
)

# Grafana fills these in from the time picker; any duration that spans several
# scrapes gives the same kind of answer.
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__range": "5m"}


def binary(path: str | None, name: str) -> str:
    if path is None:
        pytest.fail(f"{name} is not on PATH, but CI=true requires it")
    return path


def promtool(*args: str) -> str:
    result = subprocess.run(
        [binary(PROMTOOL, "promtool"), *args],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES_FILE.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_panels(path: Path = DASHBOARD_FILE) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(path.read_text())["panels"]
    return panels


def dashboard_exprs(path: Path = DASHBOARD_FILE) -> list[str]:
    """Every panel's PromQL, with Grafana's interval variables filled in."""
    exprs = []
    for panel in dashboard_panels(path):
        for target in panel.get("targets", []):
            expr = str(target["expr"])
            for variable, value in GRAFANA_INTERVALS.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    return exprs


def metric_names(expr: str) -> set[str]:
    """The streamfunnel series an expression reads, histogram suffixes removed."""
    # A name inside a recorded one (level:metric:operations) is not a series.
    names = set(re.findall(r"(?<![\w:])streamfunnel_[a-z_]+(?![\w:])", expr))
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}


def recorded_names(expr: str) -> set[str]:
    """The recording-rule series (names with colons) an expression reads."""
    return set(re.findall(r"[a-z_]+:[a-z_0-9]+:[a-z_0-9]+", expr))
