"""Dead-letter messages: the raw bytes of what could not be used, and why.

The value is the original message value, untouched, so it can be fixed and
produced again. Headers say why and where it came from.
"""

from __future__ import annotations

from typing import Final

REASON: Final = "streamfunnel-reason"
DETAIL: Final = "streamfunnel-detail"
SOURCE_TOPIC: Final = "streamfunnel-source-topic"
SOURCE_PARTITION: Final = "streamfunnel-source-partition"
SOURCE_OFFSET: Final = "streamfunnel-source-offset"

Headers = list[tuple[str, bytes]]


def source_headers(topic: str, partition: int, offset: int) -> Headers:
    return [
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]


def dead_letter_headers(reason: str, detail: str, source: Headers) -> Headers:
    return [(REASON, reason.encode()), (DETAIL, detail.encode()[:1000]), *source]


def header_map(headers: object) -> dict[str, bytes]:
    """Kafka headers (a list of pairs, or a mapping) as a dict."""
    if isinstance(headers, dict):
        return {str(k): bytes(v) for k, v in headers.items()}
    result: dict[str, bytes] = {}
    if isinstance(headers, list | tuple):
        for item in headers:
            if isinstance(item, list | tuple) and len(item) == 2:
                key, value = item
                result[str(key)] = bytes(value) if value is not None else b""
    return result
