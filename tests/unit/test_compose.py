"""docker-compose.yml stays consistent with the repository and its defaults.

No container engine is needed: the file is read as YAML and checked for what
`docker compose up` would only discover at run time (a mounted file that does
not exist, a port that differs from what the code and docs assume).
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from streamfunnel.settings import WorkerSettings
from tests.local_broker import KAFKA_LOCAL, REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
POM = REPO_ROOT / "deploy" / "kafka-local" / "pom.xml"
POM_NS = {"pom": "http://maven.apache.org/POM/4.0.0"}
# The ports the official Prometheus and Grafana images listen on.
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000


@functools.cache
def load_kafka_local() -> ModuleType:
    # The script has no .py suffix, so it needs an explicit source loader.
    loader = importlib.machinery.SourceFileLoader("kafka_local", str(KAFKA_LOCAL))
    spec = importlib.util.spec_from_loader("kafka_local", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up in sys.modules while being defined.
    sys.modules[spec.name] = module
    loader.exec_module(module)
    return module


def project_ports() -> dict[str, set[tuple[int, int]]]:
    """(host, container) ports each service may publish, from project defaults."""
    broker_port = int(load_kafka_local().DEFAULT_PORT)
    web_port = WorkerSettings().web_port
    return {
        "kafka": {(broker_port, broker_port)},
        "worker": {(web_port, web_port)},
        "prometheus": {(PROMETHEUS_PORT, PROMETHEUS_PORT)},
        "grafana": {(GRAFANA_PORT, GRAFANA_PORT)},
    }


def load_compose(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host, container) pairs of a service's `ports`, short or long syntax."""
    pairs = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            host, container = entry["published"], entry["target"]
        else:
            # [ip:]host:container[/protocol]
            parts = str(entry).split("/")[0].split(":")
            if len(parts) < 2:
                raise ValueError(f"port {entry!r} is not published on a fixed port")
            host, container = parts[-2], parts[-1]
        pairs.append((int(host), int(container)))
    return pairs


def mounted_paths(compose: dict[str, Any]) -> list[str]:
    """Every repository path the compose file refers to, relative to its folder."""
    paths = []
    for service in compose.get("services", {}).values():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                if volume.get("type") == "bind":
                    paths.append(str(volume["source"]))
            else:
                source = str(volume).split(":")[0]
                # A bare name is a named volume, anything with a slash a path.
                if "/" in source or source.startswith("."):
                    paths.append(source)
        env_files = service.get("env_file", [])
        paths += [env_files] if isinstance(env_files, str) else list(env_files)
        build = service.get("build")
        if isinstance(build, str):
            paths.append(build)
        elif isinstance(build, dict):
            context = str(build.get("context", "."))
            paths.append(context)
            if "dockerfile" in build:
                paths.append(f"{context}/{build['dockerfile']}")
    for section in ("configs", "secrets"):
        for item in compose.get(section, {}).values():
            if "file" in item:
                paths.append(str(item["file"]))
    return paths


def missing_paths(compose: dict[str, Any], base: Path) -> list[str]:
    return [p for p in mounted_paths(compose) if not (base / p).exists()]


def unexpected_ports(
    compose: dict[str, Any], allowed: dict[str, set[tuple[int, int]]]
) -> list[str]:
    problems = []
    for name, service in compose.get("services", {}).items():
        for pair in published_ports(service):
            if pair not in allowed.get(name, set()):
                problems.append(f"{name} publishes {pair[0]}:{pair[1]}")
    return problems


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(COMPOSE_FILE.read_text())


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    assert missing_paths(compose, COMPOSE_FILE.parent) == []


def test_published_ports_are_the_project_defaults(compose: dict[str, Any]) -> None:
    assert unexpected_ports(compose, project_ports()) == []
    assert published_ports(compose["services"]["kafka"]) == [(9092, 9092)]


def test_monitoring_services_are_wired_to_each_other(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker = services["worker"]
    assert published_ports(worker) == [(6066, 6066)]
    env = worker["environment"]
    assert env["STREAMFUNNEL_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
    # Reachable from Prometheus' container, published on the host's loopback.
    assert env["STREAMFUNNEL_WORKER_WEB_HOST"] == "0.0.0.0"
    assert int(env["STREAMFUNNEL_WORKER_WEB_PORT"]) == WorkerSettings().web_port
    assert all(str(p).startswith("127.0.0.1:") for p in worker["ports"])

    prometheus = services["prometheus"]
    [config_flag] = [c for c in prometheus["command"] if c.startswith("--config.file=")]
    mount = next(v for v in prometheus["volumes"] if ":/etc/prometheus" in v)
    host_dir = COMPOSE_FILE.parent / mount.split(":")[0]
    config_file = host_dir / Path(config_flag.split("=", 1)[1]).name
    config = yaml.safe_load(config_file.read_text())
    [job] = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [
        f"worker:{WorkerSettings().web_port}"
    ]
    for rule_file in config["rule_files"]:
        assert (host_dir / rule_file).exists(), rule_file

    grafana_mounts = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert "/etc/grafana/provisioning" in grafana_mounts
    assert "/var/lib/grafana/dashboards" in grafana_mounts


def test_broker_matches_the_local_broker(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    tree = ET.parse(POM)  # noqa: S314 - the repository's own pom, not input
    version = tree.findtext("pom:properties/pom:kafka.version", namespaces=POM_NS)
    assert version, "kafka.version missing from pom.xml"
    assert kafka["image"] == f"apache/kafka:{version}"

    env = kafka["environment"]
    assert "HOST://127.0.0.1:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    assert "healthcheck" in kafka


def test_checks_report_a_missing_mount_and_a_stray_port(tmp_path: Path) -> None:
    (tmp_path / "present.yml").write_text("")
    compose = load_compose(
        """
services:
  worker:
    volumes: ["./present.yml:/etc/a.yml", "./absent.yml:/etc/b.yml", "data:/data"]
    env_file: [worker.env]
    ports: ["8080:6066"]
  kafka:
    ports:
      - target: 9092
        published: 29092
configs:
  dashboards:
    file: ./grafana/dashboards
"""
    )
    assert missing_paths(compose, tmp_path) == [
        "./absent.yml",
        "worker.env",
        "./grafana/dashboards",
    ]
    assert unexpected_ports(compose, project_ports()) == [
        "worker publishes 8080:6066",
        "kafka publishes 29092:9092",
    ]
