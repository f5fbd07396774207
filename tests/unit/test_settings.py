from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streamfunnel.config import load_config
from streamfunnel.errors import ConfigError
from streamfunnel.settings import (
    KafkaSettings,
    Secret,
    TopicSettings,
    WorkerSettings,
    all_loopback,
)


def test_shipped_example_documents_the_worker_defaults() -> None:
    example = Path(__file__).parents[2] / "deploy" / "streamfunnel.toml"
    config = load_config(example, env={})
    assert config.kafka == KafkaSettings()
    assert config.topics == TopicSettings()
    assert config.worker == WorkerSettings()


def test_environment_overrides_worker_settings() -> None:
    env = {
        "STREAMFUNNEL_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "STREAMFUNNEL_TOPICS_INPUTS": "web.events, app.events",
        "STREAMFUNNEL_TOPICS_PARTITIONS": "8",
        "STREAMFUNNEL_WORKER_STORE": "memory",
        "STREAMFUNNEL_WORKER_WEB_PORT": "7000",
    }
    config = load_config(env=env)
    assert config.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert config.topics.inputs == ("web.events", "app.events")
    assert config.topics.partitions == 8
    assert config.worker.store == "memory"
    assert config.worker.web_port == 7000


def test_sasl_without_tls_is_refused_off_loopback() -> None:
    env = {
        "STREAMFUNNEL_KAFKA_BOOTSTRAP_SERVERS": "10.1.2.3:9092",
        "STREAMFUNNEL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAMFUNNEL_KAFKA_SASL_USERNAME": "svc",
        "STREAMFUNNEL_KAFKA_SASL_PASSWORD": "hunter2",
    }
    with pytest.raises(ConfigError) as caught:
        load_config(env=env)
    assert caught.value.key == "kafka.tls"
    assert "hunter2" not in str(caught.value)
    config = load_config(env={**env, "STREAMFUNNEL_KAFKA_TLS": "true"})
    assert config.kafka.security_protocol == "SASL_SSL"
    loopback = {**env, "STREAMFUNNEL_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}
    assert load_config(env=loopback).kafka.security_protocol == "SASL_PLAINTEXT"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"STREAMFUNNEL_KAFKA_SASL_MECHANISM": "GSSAPI"}, "kafka.sasl_mechanism"),
        ({"STREAMFUNNEL_KAFKA_SASL_MECHANISM": "PLAIN"}, "kafka.sasl_username"),
        ({"STREAMFUNNEL_KAFKA_SASL_USERNAME": "u"}, "kafka.sasl_mechanism"),
        ({"STREAMFUNNEL_KAFKA_TLS_CA_FILE": "/no/such/ca.pem"}, "kafka.tls_ca_file"),
        ({"STREAMFUNNEL_TOPICS_PARTITIONS": "0"}, "topics.partitions"),
        ({"STREAMFUNNEL_TOPICS_INPUTS": "funnel.metrics"}, "topics.inputs"),
        ({"STREAMFUNNEL_WORKER_STORE": "redis"}, "worker.store"),
        (
            {"STREAMFUNNEL_WORKER_PROCESSING_GUARANTEE": "at_most_once"},
            "worker.processing_guarantee",
        ),
        ({"STREAMFUNNEL_WORKER_WEB_PORT": "70000"}, "worker.web_port"),
        ({"STREAMFUNNEL_WORKER_TICK_INTERVAL_S": "0"}, "worker.tick_interval_s"),
    ],
)
def test_bad_worker_settings_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env=env)
    assert caught.value.key == key


def test_secrets_never_print(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info(
            "settings: %s", KafkaSettings(sasl_password=secret)
        )
    assert "hunter2" not in caplog.text
    assert secret.reveal() == "hunter2"


def test_loopback_detection() -> None:
    assert all_loopback("127.0.0.1:9092,localhost:9093,[::1]:9094")
    assert not all_loopback("127.0.0.1:9092,10.0.0.5:9092")
