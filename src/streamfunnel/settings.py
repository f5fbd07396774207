"""Worker settings: the Kafka connection, topic names and the worker's own knobs.

They live in the same TOML file as the funnel rules, under ``[kafka]``,
``[topics]`` and ``[worker]``, and every scalar can be overridden by a
``STREAMFUNNEL_<SECTION>_<KEY>`` environment variable (see ``config``).
Passwords are held in ``Secret`` so that no log line or traceback prints them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from streamfunnel.errors import ConfigError

SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
GUARANTEES: Final = ("at_least_once", "exactly_once")
STORES: Final = ("rocksdb", "memory")

KAFKA_KEYS: Final = {
    "bootstrap_servers",
    "client_id",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "tls",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_key_password",
}
TOPIC_KEYS: Final = {
    "inputs",
    "abandonments",
    "conversions",
    "metrics",
    "dead_letter",
    "partitions",
    "replication_factor",
}
WORKER_KEYS: Final = {
    "app_id",
    "state_dir",
    "store",
    "processing_guarantee",
    "web_host",
    "web_port",
    "batch_max",
    "batch_within_s",
    "tick_interval_s",
    "idle_after_s",
    "metrics_window_s",
}


class Secret:
    """A string that does not show itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "streamfunnel"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_key_password: Secret | None = None

    @property
    def security_protocol(self) -> str:
        if self.sasl_mechanism:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"


@dataclass(frozen=True)
class TopicSettings:
    inputs: tuple[str, ...] = ("clickstream.events",)
    abandonments: str = "funnel.abandonments"
    conversions: str = "funnel.conversions"
    metrics: str = "funnel.metrics"
    dead_letter: str = "clickstream.deadletter"
    partitions: int = 4
    replication_factor: int = 1


@dataclass(frozen=True)
class WorkerSettings:
    # Also the consumer group and the prefix of the worker's internal topics.
    app_id: str = "streamfunnel"
    state_dir: Path = Path(".run/state")
    store: str = "rocksdb"
    processing_guarantee: str = "at_least_once"
    # Loopback by default: the health and metrics pages are not for the world.
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # A batch is at most this many events or this long a wait, whichever first;
    # each session touched in a batch is written to its changelog once.
    batch_max: int = 2000
    batch_within_s: float = 0.05
    # How often a quiet partition is woken to let stream time follow the clock,
    # and how long without events makes it quiet.
    tick_interval_s: float = 0.25
    idle_after_s: float = 0.5
    metrics_window_s: float = 60.0


def build_kafka(section: Mapping[str, Any]) -> KafkaSettings:
    _check_keys("kafka", section, KAFKA_KEYS)
    bootstrap = _text(section, "kafka", "bootstrap_servers", "127.0.0.1:9092")
    mechanism = _optional_text(section, "kafka", "sasl_mechanism")
    if mechanism is not None:
        mechanism = mechanism.upper()
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                "kafka.sasl_mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}"
            )
    username = _optional_text(section, "kafka", "sasl_username")
    password = _optional_text(section, "kafka", "sasl_password")
    tls = section.get("tls", False)
    if not isinstance(tls, bool):
        raise ConfigError("kafka.tls", "must be true or false")
    if mechanism is not None:
        if not username or not password:
            raise ConfigError(
                "kafka.sasl_username", "and kafka.sasl_password are required with SASL"
            )
        if not tls and not all_loopback(bootstrap):
            raise ConfigError(
                "kafka.tls",
                "SASL without TLS would send credentials in clear text to a "
                "non-loopback broker; set kafka.tls = true",
            )
    elif username or password:
        raise ConfigError("kafka.sasl_mechanism", "is required with SASL credentials")
    files = {}
    for name in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        value = _optional_text(section, "kafka", name)
        if value is not None:
            path = Path(value)
            if not path.is_file():
                raise ConfigError(f"kafka.{name}", f"no such file: {value}")
            files[name] = path
    if files and not tls:
        raise ConfigError("kafka.tls", "must be true when TLS files are given")
    if ("tls_cert_file" in files) != ("tls_key_file" in files):
        raise ConfigError(
            "kafka.tls_key_file", "goes together with kafka.tls_cert_file"
        )
    key_password = _optional_text(section, "kafka", "tls_key_password")
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        client_id=_text(section, "kafka", "client_id", "streamfunnel"),
        sasl_mechanism=mechanism,
        sasl_username=username,
        sasl_password=Secret(password) if password else None,
        tls=tls,
        tls_ca_file=files.get("tls_ca_file"),
        tls_cert_file=files.get("tls_cert_file"),
        tls_key_file=files.get("tls_key_file"),
        tls_key_password=Secret(key_password) if key_password else None,
    )


def build_topics(section: Mapping[str, Any]) -> TopicSettings:
    _check_keys("topics", section, TOPIC_KEYS)
    defaults = TopicSettings()
    inputs = section.get("inputs", list(defaults.inputs))
    if isinstance(inputs, str):
        inputs = [inputs]
    if (
        not isinstance(inputs, list)
        or not inputs
        or not all(isinstance(name, str) and name for name in inputs)
    ):
        raise ConfigError("topics.inputs", "must be a non-empty list of topic names")
    names = {
        name: _text(section, "topics", name, getattr(defaults, name))
        for name in ("abandonments", "conversions", "metrics", "dead_letter")
    }
    clash = set(inputs) & set(names.values())
    if clash:
        raise ConfigError("topics.inputs", f"{sorted(clash)} is also an output topic")
    return TopicSettings(
        inputs=tuple(inputs),
        partitions=_int(section, "topics", "partitions", defaults.partitions, 1),
        replication_factor=_int(
            section, "topics", "replication_factor", defaults.replication_factor, 1
        ),
        **names,
    )


def build_worker(section: Mapping[str, Any]) -> WorkerSettings:
    _check_keys("worker", section, WORKER_KEYS)
    d = WorkerSettings()
    store = _text(section, "worker", "store", d.store)
    if store not in STORES:
        raise ConfigError("worker.store", f"must be one of {', '.join(STORES)}")
    guarantee = _text(section, "worker", "processing_guarantee", d.processing_guarantee)
    if guarantee not in GUARANTEES:
        raise ConfigError(
            "worker.processing_guarantee", f"must be one of {', '.join(GUARANTEES)}"
        )
    return WorkerSettings(
        app_id=_text(section, "worker", "app_id", d.app_id),
        state_dir=Path(_text(section, "worker", "state_dir", str(d.state_dir))),
        store=store,
        processing_guarantee=guarantee,
        web_host=_text(section, "worker", "web_host", d.web_host),
        web_port=_int(section, "worker", "web_port", d.web_port, 0, 65535),
        batch_max=_int(section, "worker", "batch_max", d.batch_max, 1),
        batch_within_s=_seconds(section, "batch_within_s", d.batch_within_s),
        tick_interval_s=_seconds(section, "tick_interval_s", d.tick_interval_s),
        idle_after_s=_seconds(section, "idle_after_s", d.idle_after_s),
        metrics_window_s=_seconds(section, "metrics_window_s", d.metrics_window_s),
    )


def all_loopback(bootstrap_servers: str) -> bool:
    """Whether every ``host:port`` in the list resolves to a loopback address."""
    for server in bootstrap_servers.split(","):
        host = server.strip().rsplit(":", 1)[0].strip("[]")
        if host == "localhost":
            continue
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, None)
            except OSError:
                return False
            if not all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
                return False
    return True


def _check_keys(where: str, section: Mapping[str, Any], allowed: set[str]) -> None:
    for name in section:
        if name not in allowed:
            raise ConfigError(
                f"{where}.{name}", f"unknown key; expected one of {sorted(allowed)}"
            )


def _text(section: Mapping[str, Any], where: str, name: str, default: str) -> str:
    value = section.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{name}", "must be a non-empty string")
    return value


def _optional_text(section: Mapping[str, Any], where: str, name: str) -> str | None:
    value = section.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{name}", "must be a string")
    return value


def _int(
    section: Mapping[str, Any],
    where: str,
    name: str,
    default: int,
    minimum: int,
    maximum: int | None = None,
) -> int:
    value = section.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{name}", "must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum else f">= {minimum}"
        raise ConfigError(f"{where}.{name}", f"must be {bound}")
    return value


def _seconds(section: Mapping[str, Any], name: str, default: float) -> float:
    value = section.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"worker.{name}", "must be a number of seconds above 0")
    return float(value)
