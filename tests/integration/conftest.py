"""Fixtures for tests that talk to the real broker (see tests/conftest.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import pytest_asyncio

from tests.integration.kafka_helpers import create_topics as create_on_broker
from tests.integration.kafka_helpers import delete_topics

logger = logging.getLogger(__name__)


class TopicCreator:
    """Creates uniquely named topics for one test and deletes them afterwards."""

    def __init__(self, bootstrap: str, unique_name: Callable[[str], str]) -> None:
        self.bootstrap = bootstrap
        self._unique_name = unique_name
        self.created: list[str] = []

    async def __call__(self, *roles: str, partitions: int = 1) -> list[str]:
        """Create one topic per role, e.g. ``await create_topics("in", "out")``.

        Returns the topic names in the order of ``roles``, once every partition
        has a leader.
        """
        names = [self._unique_name(role) for role in roles]
        await create_on_broker(self.bootstrap, names, partitions=partitions)
        self.created.extend(names)
        return names


@pytest_asyncio.fixture
async def create_topics(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[TopicCreator]:
    creator = TopicCreator(kafka_bootstrap, unique_name)
    yield creator
    # Matters only for a long-lived broker (STREAMFUNNEL_TEST_BROKER); a failed
    # clean-up must not turn a passing test into an error.
    try:
        await delete_topics(kafka_bootstrap, creator.created)
    except Exception:
        logger.warning(
            "could not delete test topics %s", creator.created, exc_info=True
        )
