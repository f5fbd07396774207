"""Property: any arrival order within the allowed lateness, and any duplicates
arriving within it, give exactly the records of the sorted, duplicate-free input."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamfunnel import vocabulary as v
from streamfunnel.engine import FunnelEngine
from streamfunnel.records import Record

from .builders import SECOND, T0, rules, run_engine

LATENESS_S = 60
CONFIG = rules(session={"timeout_s": 300, "allowed_lateness_s": LATENESS_S})

TYPES = [
    v.PAGE_VIEW,
    v.ADD_TO_CART,
    v.REMOVE_FROM_CART,
    v.CHECKOUT_START,
    v.PURCHASE,
    v.FORM_START,
    v.FORM_SUBMIT,
    v.EMAIL_OPTIN,
    v.WISHLIST_ADD,
    v.VIDEO_PROGRESS,
    v.VIDEO_COMPLETE,
]


@st.composite
def timelines(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for key in draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4)):
        at = T0 + draw(st.integers(0, 120)) * SECOND
        for _ in range(draw(st.integers(1, 14))):
            # Gaps up to 8 minutes, so some sessions time out and restart.
            at += draw(st.integers(0, 480)) * SECOND
            type_ = draw(st.sampled_from(TYPES))
            props: dict[str, Any] = {
                "product_id": draw(st.sampled_from(["p1", "p2"])),
                "form_id": draw(st.sampled_from(["f1", "f2"])),
                "video_percent": draw(st.sampled_from([25, 75])),
                "price": 5,
            }
            docs.append(
                {
                    "event_id": f"{key}{len(docs)}",
                    "type": type_,
                    "timestamp": at,
                    "session_id": key,
                    "properties": props,
                }
            )
    return docs


def run(docs: list[dict[str, Any]]) -> tuple[list[Record], FunnelEngine]:
    return run_engine(docs, CONFIG)


def per_session(records: list[Record]) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = {}
    for record in records:
        grouped.setdefault(record["session_id"], []).append(orjson.dumps(record))
    return grouped


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=timelines(), data=st.data())
def test_disorder_and_duplicates_within_lateness_change_nothing(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    in_order = sorted(docs, key=lambda d: (d["timestamp"], d["event_id"]))
    expected, _ = run(in_order)

    lateness_ms = LATENESS_S * SECOND
    copies = data.draw(st.lists(st.sampled_from(docs), max_size=len(docs)))
    arrivals = []
    for doc in docs + copies:
        # Delaying each event by at most the lateness keeps every one on time.
        delay = data.draw(st.integers(0, lateness_ms))
        arrivals.append((doc["timestamp"] + delay, data.draw(st.integers()), doc))
    arrivals.sort(key=lambda item: (item[0], item[1]))

    actual, engine = run([doc for _, _, doc in arrivals])
    assert engine.tally.late == 0
    assert engine.tally.duplicates == len(copies)
    assert per_session(actual) == per_session(expected)
    assert sorted(map(orjson.dumps, actual)) == sorted(map(orjson.dumps, expected))
