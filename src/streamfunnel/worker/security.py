"""Broker connection security: SASL and TLS settings as Faust and aiokafka want them."""

from __future__ import annotations

import ssl
from typing import Any

from streamfunnel.settings import KafkaSettings


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    if not kafka.tls:
        return None
    context = ssl.create_default_context(
        cafile=str(kafka.tls_ca_file) if kafka.tls_ca_file else None
    )
    if kafka.tls_cert_file is not None and kafka.tls_key_file is not None:
        context.load_cert_chain(
            str(kafka.tls_cert_file),
            str(kafka.tls_key_file),
            kafka.tls_key_password.reveal() if kafka.tls_key_password else None,
        )
    return context


def faust_credentials(kafka: KafkaSettings) -> Any:
    """Faust's ``broker_credentials`` for these settings (None for plaintext)."""
    import faust

    context = ssl_context(kafka)
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.reveal() if kafka.sasl_password else None,
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (admin, producer, consumer)."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.sasl_mechanism:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.reveal() if kafka.sasl_password else None
        )
    return options
