"""Connecting to Kafka: aiokafka clients from ``KafkaSettings``, in bounded time.

Every tool that talks to the broker goes through here, so TLS and SASL work the
same everywhere and an unreachable broker is one clear ``BrokerError`` rather
than a hang or a page of client logs. aiokafka is imported where a client is
made, so that the command line loads without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Iterable
from typing import Any, Final

from streamfunnel.errors import BrokerError, ConfigError
from streamfunnel.settings import KafkaSettings

logger = logging.getLogger(__name__)

# Long enough for a broker that is still starting (a compose stack, a CI job);
# short enough that a wrong address fails while the user is still watching.
CONNECT_TIMEOUT_S: Final = 15.0
# Stopping a producer delivers what it buffered; aiokafka gives up on a batch
# after its request timeout (40 s), so this is only a backstop.
CLOSE_TIMEOUT_S: Final = 60.0
DEFAULT_PORT: Final = 9092


def client_options(kafka: KafkaSettings, role: str) -> dict[str, Any]:
    """aiokafka client arguments for these settings: address, TLS and SASL.

    ``role`` goes into the client id, so broker logs tell the worker from the
    tools.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": f"{kafka.client_id}-{role}",
        "security_protocol": kafka.security_protocol,
    }
    if kafka.tls:
        options["ssl_context"] = tls_context(kafka)
    if kafka.sasl_mechanism is not None:
        password = kafka.sasl_password
        options["sasl_mechanism"] = kafka.sasl_mechanism
        # aiokafka reads the SCRAM credentials from the same two arguments.
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = password.reveal() if password else None
    return options


def tls_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """The TLS context for the broker: its CA (else the system's), our key pair."""
    from aiokafka.helpers import (
        create_ssl_context,
    )

    key_password = kafka.tls_key_password
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=kafka.tls_ca_file,
            certfile=kafka.tls_cert_file,
            keyfile=kafka.tls_key_file,
            password=key_password.reveal() if key_password else None,
        )
    except OSError as exc:  # ssl.SSLError among them: a bad key or password
        key = "kafka.tls_cert_file" if kafka.tls_cert_file else "kafka.tls_ca_file"
        raise ConfigError(key, f"cannot load: {exc}") from exc
    return context


def broker_addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a bootstrap list; ``[v6]:port`` and bare hosts too."""
    addresses = []
    for server in (s.strip() for s in bootstrap_servers.split(",")):
        if not server:
            continue
        if server.startswith("["):
            host, _, rest = server[1:].partition("]")
            port = rest.removeprefix(":")
        elif server.count(":") == 1:
            host, _, port = server.partition(":")
        else:
            host, port = server, ""
        if not host or not (port or str(DEFAULT_PORT)).isdigit():
            raise ConfigError("kafka.bootstrap_servers", f"{server!r} is not host:port")
        addresses.append((host, int(port or DEFAULT_PORT)))
    if not addresses:
        raise ConfigError("kafka.bootstrap_servers", "names no broker")
    return addresses


async def wait_for_broker(bootstrap_servers: str, timeout_s: float) -> None:
    """Return once one bootstrap server accepts a TCP connection.

    Probing with plain TCP first keeps a broker that is still starting from
    filling the log with aiokafka's connection errors, one per attempt.
    """
    addresses = broker_addresses(bootstrap_servers)
    deadline = time.monotonic() + timeout_s
    reason = "no answer"
    while True:
        for host, port in addresses:
            remaining_s = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(0.05, min(remaining_s, 3.0))):
                    _, writer = await asyncio.open_connection(host, port)
            except TimeoutError:
                reason = "no answer"
                continue
            except OSError as exc:
                reason = exc.strerror or str(exc)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        if time.monotonic() >= deadline:
            raise BrokerError(
                f"cannot reach Kafka at {bootstrap_servers} within "
                f"{timeout_s:g} s ({reason.lower()})"
            )
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


async def connect(client: Any, kafka: KafkaSettings, timeout_s: float) -> None:
    """Start an aiokafka client (producer, consumer or admin), or raise BrokerError.

    Gives up after ``timeout_s``; the client is closed again on failure.
    """
    from aiokafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    try:
        await wait_for_broker(kafka.bootstrap_servers, timeout_s)
        async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
            await client.start()
    except BrokerError:
        await close(client)
        raise
    except (KafkaError, OSError, TimeoutError) as exc:
        await close(client)
        raise BrokerError(
            f"Kafka at {kafka.bootstrap_servers} accepts connections but the "
            f"{kafka.security_protocol} client could not start "
            f"({type(exc).__name__}); check the TLS and SASL settings"
        ) from exc
    logger.debug(
        "%s connected to %s (%s)",
        type(client).__name__,
        kafka.bootstrap_servers,
        kafka.security_protocol,
    )


async def close(client: Any) -> None:
    """Stop a producer or consumer (delivering what it buffered), or close an admin.

    Bounded, and quiet about a broker that went away meanwhile: closing is what
    runs after something else already failed.
    """
    from aiokafka.errors import KafkaError

    # Producers and consumers stop; the admin client only closes.
    stop = getattr(client, "stop", None) or client.close
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await stop()


async def topic_partitions(admin: Any, topics: Iterable[str]) -> dict[str, list[int]]:
    """Partition numbers of those of ``topics`` that exist, from a started admin.

    All topics are described at once: naming a missing one would create it on
    brokers that create topics on first use.
    """
    wanted = set(topics)
    described = await admin.describe_topics()
    return {
        topic["topic"]: sorted(p["partition"] for p in topic["partitions"])
        for topic in described
        if topic["topic"] in wanted and topic["error_code"] == 0 and topic["partitions"]
    }


def admin_client(kafka: KafkaSettings, role: str) -> Any:
    """An aiokafka admin client for these settings, not started yet."""
    from aiokafka.admin import (
        AIOKafkaAdminClient,
    )

    return AIOKafkaAdminClient(**client_options(kafka, role))


async def check_topic(
    kafka: KafkaSettings, topic: str, role: str, timeout_s: float
) -> None:
    """Raise BrokerError unless ``topic`` exists, rather than wait for it."""
    admin = admin_client(kafka, role)
    await connect(admin, kafka, timeout_s)
    try:
        found = await topic_partitions(admin, [topic])
    finally:
        await close(admin)
    if topic not in found:
        raise BrokerError(
            f"topic {topic!r} does not exist on {kafka.bootstrap_servers}; "
            "create it first"
        )
