"""Stream time: ordering within the allowed lateness, late events, duplicates."""

from __future__ import annotations

from streamfunnel import vocabulary as v
from streamfunnel.engine import ACCEPTED, DUPLICATE, LATE, FunnelEngine

from .builders import MINUTE, SECOND, T0, event, of_type, raw, rules, run


def test_stream_time_is_max_event_time_minus_lateness() -> None:
    engine = FunnelEngine(rules())
    engine.ingest(event(raw(v.PAGE_VIEW, T0 + 5 * MINUTE)))
    assert engine.stream_time == T0 + 4 * MINUTE


def test_event_within_lateness_is_accepted_and_older_is_late() -> None:
    engine = FunnelEngine(rules())
    assert engine.ingest(event(raw(v.PAGE_VIEW, T0 + MINUTE))) == ACCEPTED
    assert engine.ingest(event(raw(v.PAGE_VIEW, T0))) == ACCEPTED
    assert engine.ingest(event(raw(v.PAGE_VIEW, T0 - 1))) == LATE
    assert engine.tally.late == 1


def test_late_event_changes_nothing() -> None:
    docs = [raw(v.PAGE_VIEW, T0 + 2 * MINUTE), raw(v.PURCHASE, T0)]
    records = run(docs)
    assert of_type(records, "macro_conversion") == []


def test_duplicates_are_ignored_pending_or_applied() -> None:
    add = raw(v.ADD_TO_CART, T0, product_id="p", quantity=1, price=1)
    engine = FunnelEngine(rules())
    assert engine.ingest(event(add)) == ACCEPTED
    assert engine.ingest(event(add)) == DUPLICATE
    engine.ingest(event(raw(v.PAGE_VIEW, T0 + 5 * MINUTE)))
    # Applied by now (older than stream time), and still recognised.
    assert engine.ingest(event(add)) == DUPLICATE
    engine.flush()
    [alert] = of_type(engine.take(), "abandonment")
    assert alert["cart"]["items"][0]["quantity"] == 1
    assert engine.tally.duplicates == 2


def test_session_does_not_end_before_lateness_has_passed() -> None:
    config = rules(session={"timeout_s": 10, "allowed_lateness_s": 5})
    engine = FunnelEngine(config)
    engine.ingest(event(raw(v.ADD_TO_CART, T0, product_id="p"), config))
    engine.advance_to(T0 + 10 * SECOND - 1)
    assert of_type(engine.take(), "abandonment") == []
    engine.advance_to(T0 + 10 * SECOND)
    [alert] = of_type(engine.take(), "abandonment")
    assert alert["detected_at"] == "2026-01-05T08:00:10.000Z"


def test_other_key_traffic_ends_quiet_sessions() -> None:
    config = rules(session={"timeout_s": 10, "allowed_lateness_s": 5})
    engine = FunnelEngine(config)
    engine.ingest(event(raw(v.ADD_TO_CART, T0, product_id="p"), config))
    engine.ingest(event(raw(v.PAGE_VIEW, T0 + 15 * SECOND, session="s2"), config))
    assert [r["kind"] for r in of_type(engine.take(), "abandonment")] == ["cart"]
    assert "s1" not in engine.sessions


def test_future_pending_event_survives_session_end() -> None:
    config = rules(session={"timeout_s": 10, "allowed_lateness_s": 60})
    docs = [
        raw(v.ADD_TO_CART, T0, product_id="p"),
        raw(v.WISHLIST_ADD, T0 + 30 * SECOND),
    ]
    records = run(docs, config)
    assert [r["session_id"] for r in of_type(records, "micro_conversion")] == [
        f"s1:{T0}",
        f"s1:{T0 + 30 * SECOND}",
    ]
    assert len(of_type(records, "abandonment")) == 1


def test_equal_timestamps_apply_in_event_id_order() -> None:
    a = raw(v.ADD_TO_CART, T0, event_id="a", product_id="p")
    b = raw(v.REMOVE_FROM_CART, T0, event_id="b", product_id="p")
    assert of_type(run([a, b]), "abandonment") == of_type(run([b, a]), "abandonment")
    assert of_type(run([b, a]), "abandonment") == []
