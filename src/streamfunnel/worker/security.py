"""Broker connection security as Faust wants it (``broker_credentials``).

The TLS context and SASL settings are the ones every other client gets from
``streamfunnel.connection``, so the worker and the tools connect alike.
"""

from __future__ import annotations

from typing import Any

from streamfunnel.connection import tls_context
from streamfunnel.settings import KafkaSettings


def faust_credentials(kafka: KafkaSettings) -> Any:
    """Faust's ``broker_credentials`` for these settings (None for plaintext)."""
    import faust

    context = tls_context(kafka) if kafka.tls else None
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
