"""The traffic simulator: reproducible, shaped like real traffic, noisy on purpose.

The statistics are measured the way a user would see them: by running the
simulated lines through the real engine with each industry's preset.
"""

from __future__ import annotations

import io
import itertools
from collections import Counter
from dataclasses import dataclass

import orjson
import pytest

from streamfunnel import events as ev
from streamfunnel import vocabulary as v
from streamfunnel.abandonment import CART, CHECKOUT
from streamfunnel.config import load_config
from streamfunnel.engine import BOUNCED, DUPLICATE
from streamfunnel.errors import ConfigError
from streamfunnel.events import Event, EventDecoder, Invalid
from streamfunnel.replay import replay
from streamfunnel.rules import INDUSTRIES, Rules
from streamfunnel.simulation import (
    DOCUMENTED_RANGES,
    VALID,
    SimulationSettings,
    lines_per_session,
    simulate_arrivals,
    simulate_duration,
    simulate_labelled,
    simulate_sessions,
    write_lines,
)
from streamfunnel.tally import Tally

SAMPLE_SESSIONS = 10_000
SEED = 7


@dataclass
class Sample:
    """One industry's simulated lines, as labelled and as the engine counted them."""

    rules: Rules
    settings: SimulationSettings
    lines: int
    labels: Counter[str]
    tally: Tally

    def rate(self, name: str) -> float:
        t = self.tally
        sessions = t.sessions_started
        if name == "page_views_per_session":
            return t.events[v.PAGE_VIEW] / sessions
        if name == "bounce_rate":
            return t.sessions_ended[BOUNCED] / sessions
        if name == "macro_conversion_rate":
            return t.macro[self.rules.macro_name] / sessions
        if name == "cart_abandonment_rate":
            left = t.abandonments[CART] + t.abandonments[CHECKOUT]
            return left / t.micro["add_to_cart"]
        raise KeyError(name)


def rules_for(industry: str) -> Rules:
    return load_config(industry=industry, env={}).rules


@pytest.fixture(scope="module", params=INDUSTRIES)
def sample(request: pytest.FixtureRequest) -> Sample:
    industry: str = request.param
    settings = SimulationSettings(industry=industry, seed=SEED)
    rules = rules_for(industry)
    labels: Counter[str] = Counter()
    lines = []
    for line, label in simulate_labelled(settings, count=SAMPLE_SESSIONS):
        lines.append(line)
        labels[label] += 1
    result = replay(lines, rules, io.BytesIO())
    return Sample(rules, settings, len(lines), labels, result.tally)


def test_same_seed_gives_the_same_bytes() -> None:
    settings = SimulationSettings(industry="content", seed=3)
    first = list(simulate_sessions(settings, 300))
    assert first == list(simulate_sessions(settings, 300))
    assert first != list(simulate_sessions(SimulationSettings("content", seed=4), 300))


def test_start_time_is_a_setting_not_the_clock() -> None:
    later = SimulationSettings(start_ms=1_800_000_000_000)
    first = EventDecoder().decode(next(simulate_sessions(later, 1)))
    assert isinstance(first, Event)
    assert first.ts == later.start_ms


def test_each_simulated_session_is_one_engine_session(sample: Sample) -> None:
    assert sample.tally.sessions_started == SAMPLE_SESSIONS
    assert sum(sample.tally.sessions_ended.values()) == SAMPLE_SESSIONS


@pytest.mark.parametrize(
    "name",
    [
        "page_views_per_session",
        "bounce_rate",
        "macro_conversion_rate",
        "cart_abandonment_rate",
    ],
)
def test_statistics_are_within_documented_ranges(sample: Sample, name: str) -> None:
    low, high = DOCUMENTED_RANGES[sample.rules.industry][name]
    assert low <= sample.rate(name) <= high


def test_macro_conversion_stays_under_three_percent(sample: Sample) -> None:
    assert sample.rate("macro_conversion_rate") < 0.03


def test_every_reachable_micro_conversion_appears(sample: Sample) -> None:
    # A micro conversion only reachable through the macro event (an account on
    # a freemium site) never fires: that event counts as the macro instead.
    reachable = [
        micro.name
        for micro in sample.rules.micro
        if any(c.type not in sample.rules.macro_types for c in micro.conditions)
    ]
    assert len(reachable) >= len(sample.rules.micro) - 1
    counts = {name: sample.tally.micro[name] for name in reachable}
    assert min(counts.values()) >= 20, counts


def test_some_forms_are_left_and_carts_edited(sample: Sample) -> None:
    t = sample.tally
    assert t.abandonments["form"] > 0
    assert 0 < t.events[v.FORM_SUBMIT] < t.events[v.FORM_START]
    assert t.events[v.REMOVE_FROM_CART] > 0
    assert t.events[v.VIDEO_PROGRESS] > t.events[v.VIDEO_COMPLETE] > 0


def test_invalid_lines_make_up_the_configured_share(sample: Sample) -> None:
    expected = sample.settings.invalid_share
    assert sample.tally.invalid_total / sample.lines == pytest.approx(expected, 0.15)
    by_reason = {reason: sample.labels[reason] for reason in ev.INVALID_REASONS}
    assert dict(sample.tally.invalid) == by_reason
    assert min(by_reason.values()) > 0


def test_engine_finds_the_configured_duplicates(sample: Sample) -> None:
    expected = sample.settings.duplicate_share
    assert sample.tally.duplicates == sample.labels[DUPLICATE]
    assert sample.tally.duplicates / sample.lines == pytest.approx(expected, 0.15)


def test_default_disorder_makes_no_late_events(sample: Sample) -> None:
    assert sample.tally.late == 0


def test_delays_beyond_the_allowed_lateness_make_late_events() -> None:
    settings = SimulationSettings(delayed_share=0.2, max_delay_ms=300_000)
    result = replay(
        simulate_sessions(settings, 500), rules_for("ecommerce"), io.BytesIO()
    )
    assert result.tally.late > 0


@pytest.mark.parametrize("industry", INDUSTRIES)
def test_labels_match_what_the_decoder_decides(industry: str) -> None:
    decoder = EventDecoder()
    settings = SimulationSettings(industry=industry, seed=SEED, invalid_share=0.05)
    seen: Counter[str] = Counter()
    for line, label in simulate_labelled(settings, count=1000):
        item = decoder.decode(line)
        seen[label] += 1
        if label in (VALID, DUPLICATE):
            assert isinstance(item, Event), (item, line)
            stamp = orjson.loads(line)["timestamp"]
            if isinstance(stamp, str):
                assert ev.format_timestamp(item.ts) == stamp
        else:
            assert isinstance(item, Invalid), line
            assert item.reason == label
    assert set(seen) == {VALID, DUPLICATE, *ev.INVALID_REASONS}


def test_trackers_spell_events_their_own_way() -> None:
    docs = [
        orjson.loads(line)
        for line, label in simulate_labelled(SimulationSettings(seed=1), count=3000)
        if label == VALID
    ]
    types = Counter(doc["type"] for doc in docs)
    for spelling in ("begin_checkout", "Checkout Started", v.CHECKOUT_START):
        assert types[spelling] > 0
    segment_carts = [d for d in docs if d["type"] == "Product Added"]
    assert all("product_id" in d["properties"] for d in segment_carts)
    ga4_carts = [d for d in docs if d["type"] == v.ADD_TO_CART]
    assert all("items" in d["properties"] for d in ga4_carts)
    assert any(type(doc["timestamp"]) is int for doc in docs)


def test_identities_mix_session_anonymous_and_user_ids() -> None:
    docs = [
        orjson.loads(line)
        for line, label in simulate_labelled(SimulationSettings(seed=2), count=3000)
        if label == VALID
    ]
    anonymous_only = [d for d in docs if "session_id" not in d and "anonymous_id" in d]
    user_only = [d for d in docs if d.keys() & set(ev.IDENTITY_FIELDS) == {"user_id"}]
    logged_in = [d for d in docs if "session_id" in d and "user_id" in d]
    assert anonymous_only
    assert user_only
    assert logged_in
    assert len(anonymous_only) < len(docs) / 4


def test_duration_covers_sessions_starting_within_it() -> None:
    settings = SimulationSettings(sessions_per_s=5.0)
    lines = list(simulate_duration(settings, 120.0))
    result = replay(lines, rules_for("ecommerce"), io.BytesIO())
    assert 480 <= result.tally.sessions_started <= 720
    # Events reach the stream in arrival order, at most the allowed delay behind.
    decoder = EventDecoder()
    latest = 0
    for line in lines:
        item = decoder.decode(line)
        if isinstance(item, Event):
            assert item.ts >= latest - settings.max_delay_ms - 3000
            latest = max(latest, item.ts)


def test_write_lines_terminates_every_line() -> None:
    stream = io.BytesIO()
    lines = list(simulate_sessions(SimulationSettings(), 50))
    assert write_lines(lines, stream) == len(lines)
    assert stream.getvalue().splitlines() == lines


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"industry": "casino"}, "simulation.industry"),
        ({"invalid_share": 1.5}, "simulation.invalid_share"),
        ({"ga4_share": 0.6, "segment_share": 0.5}, "simulation.segment_share"),
        ({"sessions_per_s": 0.0}, "simulation.sessions_per_s"),
        ({"max_delay_ms": -1}, "simulation.max_delay_ms"),
        ({"start_ms": 1_767_600_000}, "simulation.start_ms"),
    ],
)
def test_settings_out_of_range_are_refused(
    changes: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        SimulationSettings(**changes)  # type: ignore[arg-type]
    assert caught.value.key == key


def test_count_or_duration_but_not_both() -> None:
    with pytest.raises(TypeError):
        simulate_labelled(SimulationSettings(), count=1, duration_s=1.0)


def test_arrivals_come_in_order_each_no_earlier_than_its_event() -> None:
    settings = SimulationSettings(seed=8, delayed_share=0.2)
    arrivals = list(simulate_arrivals(settings, count=400))
    assert [(line, label) for _, line, label in arrivals] == list(
        simulate_labelled(settings, count=400)
    )
    times = [at for at, _, _ in arrivals]
    assert times == sorted(times)
    decoder = EventDecoder()
    delayed = 0
    for at, line, _ in arrivals:
        item = decoder.decode(line)
        if isinstance(item, Event):
            assert item.ts <= at
            delayed += item.ts < at
    assert delayed > 0


def test_arrivals_without_a_bound_keep_coming() -> None:
    endless = simulate_arrivals(SimulationSettings(seed=1, sessions_per_s=1000.0))
    assert len(list(itertools.islice(endless, 30_000))) == 30_000
    with pytest.raises(TypeError):
        simulate_arrivals(SimulationSettings(), count=1, duration_s=1.0)


def test_lines_per_session_counts_noise_too() -> None:
    settings = SimulationSettings(seed=3)
    mean = lines_per_session(settings, sample_sessions=500)
    assert mean == sum(1 for _ in simulate_sessions(settings, 500)) / 500
    assert 4.0 < mean < 10.0
