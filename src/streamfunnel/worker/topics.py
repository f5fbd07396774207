"""Creating the worker's input and output topics before Faust starts.

Faust creates its own internal topics (the session-keyed topic and the
changelog); the topics users produce to and subscribe to are created here, with
the configured partitions, if they do not exist yet. Existing topics are left
as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from streamfunnel.config import Config
from streamfunnel.connection import admin_client, close, connect
from streamfunnel.errors import BrokerError

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_S = 30.0


def user_topics(config: Config) -> list[str]:
    t = config.topics
    return [*t.inputs, t.abandonments, t.conversions, t.metrics, t.dead_letter]


async def ensure_topics(config: Config) -> list[str]:
    """Create missing user topics; returns the names it created."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    admin = admin_client(config.kafka, "worker-admin")
    await connect(admin, config.kafka, ADMIN_TIMEOUT_S)
    try:
        async with asyncio.timeout(ADMIN_TIMEOUT_S):
            existing = set(await admin.list_topics())
            missing = [name for name in user_topics(config) if name not in existing]
            if missing:
                new = [
                    NewTopic(
                        name,
                        num_partitions=config.topics.partitions,
                        replication_factor=config.topics.replication_factor,
                    )
                    for name in missing
                ]
                # Another worker starting at the same time may win the race.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(new)
                logger.info("created topics %s", ", ".join(missing))
    except (KafkaError, TimeoutError) as exc:
        raise BrokerError(
            f"creating topics on {config.kafka.bootstrap_servers} failed: {exc!r}"
        ) from exc
    finally:
        await close(admin)
    return missing
