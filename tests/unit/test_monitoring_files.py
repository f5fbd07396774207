"""deploy/prometheus and deploy/grafana agree with the metrics the worker exports."""

from __future__ import annotations

import yaml
from prometheus_client import CollectorRegistry

from streamfunnel.config import load_config
from streamfunnel.metrics import WorkerMetrics
from streamfunnel.tally import Tally
from tests.prometheus_tool import (
    DASHBOARD_FILE,
    PROMETHEUS_DIR,
    RULES_FILE,
    dashboard_exprs,
    dashboard_panels,
    metric_names,
    needs_promtool,
    promtool,
    recorded_names,
    rules,
)

GRAFANA_DIR = DASHBOARD_FILE.parent.parent


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    WorkerMetrics(registry, load_config(env={}).rules, dict, Tally())
    return {family.name for family in registry.collect()} | {
        f"{family.name}_total"
        for family in registry.collect()
        if family.type == "counter"
    }


@needs_promtool
def test_promtool_accepts_the_configs_and_rules() -> None:
    for config in ("prometheus.yml", "prometheus.docker.yml"):
        promtool("check", "config", str(PROMETHEUS_DIR / config))
    promtool("check", "rules", str(RULES_FILE))


def test_every_metric_read_is_one_the_worker_exports() -> None:
    exported = exported_names()
    for expr in [*dashboard_exprs(), *(r["expr"] for r in rules())]:
        unknown = metric_names(expr) - exported
        assert not unknown, f"{sorted(unknown)} in {expr}"


def test_every_recorded_series_read_is_recorded() -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    for expr in [*dashboard_exprs(), *(r["expr"] for r in rules())]:
        unknown = recorded_names(expr) - recorded
        assert not unknown, f"{sorted(unknown)} in {expr}"


def test_every_panel_has_a_unit_a_description_and_the_provisioned_source() -> None:
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasources["datasources"][0]["uid"]
    panels = dashboard_panels()
    assert panels
    for panel in panels:
        assert panel["description"], panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]


def test_the_abandonment_panel_shows_the_industry_average() -> None:
    [panel] = [p for p in dashboard_panels() if p["title"] == "Cart abandonment rate"]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert 0.6982 in [step["value"] for step in steps]


def test_the_dashboard_provider_loads_the_mounted_folder() -> None:
    doc = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    assert doc["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
