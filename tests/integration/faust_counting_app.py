"""A minimal Faust app that test_faust_app.py runs as a worker in a subprocess.

It upper-cases each value and counts records per key in a table, so its output
shows both the stream transformation and the table state (which lives in a
changelog topic on the broker). Configured through COUNTING_APP_* variables
because the test starts it with `faust -A ... worker`.
"""

from __future__ import annotations

import os
from typing import Any

import faust

BROKER = os.environ.get("COUNTING_APP_BROKER", "127.0.0.1:9092")
APP_ID = os.environ.get("COUNTING_APP_ID", "counting-app")
SOURCE_TOPIC = os.environ.get("COUNTING_APP_SOURCE", "counting-app-in")
SINK_TOPIC = os.environ.get("COUNTING_APP_SINK", "counting-app-out")
PARTITIONS = int(os.environ.get("COUNTING_APP_PARTITIONS", "2"))
DATA_DIR = os.environ.get("COUNTING_APP_DATADIR", f"{APP_ID}-data")
TABLE_NAME = "seen"

app = faust.App(
    APP_ID,
    broker=f"kafka://{BROKER}",
    store="memory://",
    datadir=DATA_DIR,
    web_enabled=False,
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    # Commit soon after processing, so a restarted worker resumes where this
    # one stopped instead of counting the same records twice.
    broker_commit_interval=0.5,
)

source = app.topic(SOURCE_TOPIC, key_serializer="raw", value_serializer="raw")
sink = app.topic(SINK_TOPIC, key_serializer="raw", value_serializer="json")
seen = app.Table(TABLE_NAME, default=int, partitions=PARTITIONS)


@app.agent(source)
async def count_and_upper(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        key = bytes(event.key).decode()
        seen[key] += 1
        output: dict[str, Any] = {
            "key": key,
            "upper": bytes(event.value).decode().upper(),
            "seen": seen[key],
        }
        await sink.send(key=event.key, value=output)
