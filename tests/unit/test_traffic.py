"""Live traffic without a broker: pacing on a fake clock, stamps and keys,
progress lines, and the simulate command short of Kafka."""

from __future__ import annotations

import asyncio
import io
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from streamfunnel import events as ev
from streamfunnel.cli_traffic import alerts, simulate
from streamfunnel.connection import broker_addresses, client_options
from streamfunnel.engine import DUPLICATE
from streamfunnel.errors import BrokerError, ConfigError
from streamfunnel.pacing import (
    MAX_CATCH_UP_S,
    KeepUpCheck,
    Pacer,
    Progress,
    RateMeter,
    format_elapsed,
    format_progress,
)
from streamfunnel.settings import KafkaSettings, Secret
from streamfunnel.simulation import (
    VALID,
    Arrival,
    SimulationSettings,
    simulate_arrivals,
    simulate_sessions,
)
from streamfunnel.traffic import (
    KEY_BY_NONE,
    KEY_BY_SESSION,
    Clock,
    LiveStamps,
    TrafficPlan,
    live_settings,
    produce_traffic,
    send_lines,
    session_key,
)

NOW_MS = 1_800_000_000_000


class FakeClock:
    """Monotonic and wall time that move only when the sender sleeps or sends."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def monotonic_s(self) -> float:
        return self.now_s

    def wall_ms(self) -> int:
        return NOW_MS + round(self.now_s * 1000)

    async def sleep(self, seconds: float) -> None:
        self.now_s += seconds
        await asyncio.sleep(0)


class FakeProducer:
    """Records what was sent and when; each send may cost ``send_cost_s``."""

    def __init__(self, clock: FakeClock, send_cost_s: float = 0.0) -> None:
        self.clock = clock
        self.send_cost_s = send_cost_s
        self.sent: list[tuple[float, bytes | None, bytes, int | None]] = []
        self.stall_at: dict[int, float] = {}

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[Any]:
        self.clock.now_s += self.send_cost_s + self.stall_at.get(len(self.sent), 0.0)
        self.sent.append((self.clock.now_s, key, value, timestamp_ms))
        delivered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def clock_with_producer(
    send_cost_s: float = 0.0,
) -> tuple[Clock, FakeClock, FakeProducer]:
    fake = FakeClock()
    clock = Clock(monotonic_s=fake.monotonic_s, wall_ms=fake.wall_ms, sleep=fake.sleep)
    return clock, fake, FakeProducer(fake, send_cost_s)


def arrivals(count: int = 300, **changes: Any) -> list[Arrival]:
    settings = SimulationSettings(seed=11, **changes)
    return list(simulate_arrivals(settings, count=count))


# -- pacing ------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [50.0, 1000.0, 20_000.0])
async def test_a_fixed_rate_holds_over_the_run(rate: float) -> None:
    clock, fake, producer = clock_with_producer()
    lines = arrivals(400)
    start_s = fake.now_s
    plan = TrafficPlan("t", rate_per_s=rate)

    result = await send_lines(producer, iter(lines), plan, lines[0][0], clock=clock)

    assert result.sent == len(lines)
    times = [at for at, *_ in producer.sent]
    # No line goes before it is due, nor later than one nap behind.
    for n, at in enumerate(times):
        assert start_s + n / rate <= at + 1e-9 <= start_s + n / rate + 0.051
    measured = (len(times) - 1) / (times[-1] - times[0])
    assert measured == pytest.approx(rate, rel=0.02)
    assert result.slipped_s == 0
    assert not result.fell_behind


@pytest.mark.asyncio
async def test_without_a_rate_lines_go_when_the_simulator_says_they_arrive() -> None:
    clock, fake, producer = clock_with_producer()
    lines = arrivals(30)
    start_s, start_ms = fake.now_s, lines[0][0]

    await send_lines(producer, iter(lines), TrafficPlan("t"), start_ms, clock=clock)

    for (arrival_ms, _, _), (at, *_) in zip(lines, producer.sent, strict=True):
        due_s = start_s + (arrival_ms - start_ms) / 1000
        assert due_s - 1e-9 <= at <= due_s + 0.051


@pytest.mark.asyncio
async def test_a_stall_is_caught_up_by_at_most_a_second_of_lines() -> None:
    clock, _, producer = clock_with_producer()
    producer.stall_at = {100: 5.0}
    lines = arrivals(400)
    rate = 200.0

    result = await send_lines(
        producer, iter(lines), TrafficPlan("t", rate_per_s=rate), 0, clock=clock
    )

    assert result.slipped_s == pytest.approx(5.0 - MAX_CATCH_UP_S, abs=0.06)
    times = [at for at, *_ in producer.sent]
    after_stall = times[101:]
    burst = sum(1 for at in after_stall if at - after_stall[0] < 0.01)
    # A second's worth, plus what fell due during one nap.
    assert burst <= rate * (MAX_CATCH_UP_S + 0.05) + 1
    # A short stall is not a sender that cannot keep up.
    assert not result.fell_behind


@pytest.mark.asyncio
async def test_a_sender_below_its_rate_warns_once() -> None:
    # Each send costs 1.5 / rate: two thirds of the asked rate at best.
    rate = 100.0
    clock, _, producer = clock_with_producer(send_cost_s=1.5 / rate)
    stream = io.StringIO()
    progress = Progress(stream, tty=False)

    result = await send_lines(
        producer,
        iter(arrivals(400)),
        TrafficPlan("t", rate_per_s=rate),
        0,
        clock=clock,
        progress=progress,
    )

    assert result.fell_behind
    warnings = [line for line in stream.getvalue().splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "warning: cannot keep up with 100 events/s: sending 67"
    )


@pytest.mark.asyncio
async def test_duration_counts_wall_seconds_of_sending() -> None:
    clock, fake, producer = clock_with_producer()
    start_s = fake.now_s
    endless = simulate_arrivals(SimulationSettings(seed=3))
    plan = TrafficPlan("t", rate_per_s=500.0, duration_s=2.0)

    result = await send_lines(producer, endless, plan, 0, clock=clock)

    assert result.sent == pytest.approx(1000, abs=30)
    assert fake.now_s - start_s == pytest.approx(2.0, abs=0.06)


@pytest.mark.asyncio
async def test_a_stop_request_ends_sending() -> None:
    clock, _, producer = clock_with_producer()
    stop = asyncio.Event()
    stop.set()

    result = await send_lines(
        producer,
        simulate_arrivals(SimulationSettings()),
        TrafficPlan("t", rate_per_s=10.0),
        0,
        clock=clock,
        stop=stop,
    )

    assert result.sent == 0


def test_pacer_moves_its_origin_instead_of_bursting() -> None:
    pacer = Pacer(start_s=0.0, max_catch_up_s=1.0)
    assert pacer.wait_s(2.0, now_s=1.5) == pytest.approx(0.5)
    assert pacer.wait_s(2.0, now_s=2.5) == 0.0
    assert pacer.slipped_s == 0.0
    assert pacer.wait_s(2.0, now_s=6.0) == 0.0
    assert pacer.slipped_s == pytest.approx(3.0)
    assert pacer.wait_s(3.0, now_s=6.0) == 0.0
    assert pacer.wait_s(5.0, now_s=6.0) == pytest.approx(2.0)


def test_rate_meter_measures_over_its_window() -> None:
    meter = RateMeter(window_s=2.0)
    for tenth in range(50):
        now_s = tenth / 10
        # 100 lines a second for 3 s, then 50.
        sent = 100 * tenth // 10 if now_s <= 3 else 300 + 50 * (tenth - 30) // 10
        meter.record(
            now_s, sent, progress_s=now_s if now_s <= 3 else 3 + (now_s - 3) / 2
        )
        if tenth == 19:
            assert meter.pace() is None
    assert meter.rate_per_s() == pytest.approx(50, rel=0.06)
    assert meter.pace() == pytest.approx(0.5, rel=0.06)


def test_rate_meter_takes_samples_at_one_instant_as_one() -> None:
    meter = RateMeter(window_s=2.0)
    meter.record(1.0, 10, 0.1)
    meter.record(1.0, 20, 0.2)
    assert meter.rate_per_s() == 0.0
    meter.record(2.0, 120, 1.2)
    assert meter.rate_per_s() == pytest.approx(100.0)


def test_keep_up_check_needs_a_sustained_shortfall() -> None:
    check = KeepUpCheck(share=0.95, after_s=3.0)
    assert not check.too_slow(0.0, None)
    assert not check.too_slow(1.0, 0.9)
    assert not check.too_slow(2.0, 0.99)  # recovered: the count starts again
    assert not check.too_slow(3.0, 0.9)
    assert not check.too_slow(5.9, 0.9)
    assert check.too_slow(6.0, 0.9)
    assert not check.too_slow(60.0, 0.1)  # said once, not again


def test_live_settings_start_now_with_sessions_matching_the_rate() -> None:
    base = SimulationSettings(seed=5)
    live = live_settings(base, rate_per_s=600.0, now_ms=NOW_MS)
    assert live.start_ms == NOW_MS
    lines_per_session = sum(1 for _ in simulate_sessions(base, 1000)) / 1000
    assert live.sessions_per_s == pytest.approx(600.0 / lines_per_session)
    assert live_settings(base, None, NOW_MS).sessions_per_s == base.sessions_per_s


# -- timestamps and keys -----------------------------------------------------


def labelled(label: str, **changes: Any) -> Iterator[Arrival]:
    settings = SimulationSettings(seed=2, **changes)
    return (a for a in simulate_arrivals(settings, count=500) if a[2] == label)


def test_timestamps_become_send_time_less_the_simulated_delay() -> None:
    stamps = LiveStamps(KEY_BY_NONE)
    seen_iso = seen_epoch = 0
    for arrival in labelled(VALID, delayed_share=0.3):
        arrival_ms, line, _ = arrival
        simulated = orjson.loads(line)
        delay_ms = arrival_ms - (ev.parse_timestamp(simulated["timestamp"]) or 0)
        key, value = stamps.prepare(arrival, NOW_MS)
        live = orjson.loads(value)
        assert key is None
        assert ev.parse_timestamp(live["timestamp"]) == NOW_MS - delay_ms
        # The form survives: ISO text stays text, epoch milliseconds stay numbers.
        assert type(live["timestamp"]) is type(simulated["timestamp"])
        seen_iso += type(live["timestamp"]) is str
        seen_epoch += type(live["timestamp"]) is int
        assert {k: v for k, v in live.items() if k != "timestamp"} == {
            k: v for k, v in simulated.items() if k != "timestamp"
        }
    assert seen_iso
    assert seen_epoch


def test_duplicates_stay_exact_copies_of_what_was_sent() -> None:
    stamps = LiveStamps(KEY_BY_SESSION)
    sent: dict[str, tuple[bytes | None, bytes]] = {}
    duplicates = 0
    settings = SimulationSettings(seed=4, duplicate_share=0.1)
    for n, arrival in enumerate(simulate_arrivals(settings, count=300)):
        _, line, label = arrival
        message = stamps.prepare(arrival, NOW_MS + 37 * n)
        if label == VALID:
            sent[orjson.loads(line)["event_id"]] = message
        elif label == DUPLICATE:
            duplicates += 1
            assert message == sent[orjson.loads(line)["event_id"]]
    assert duplicates > 10


def test_keys_are_session_keys_and_broken_lines_go_unchanged() -> None:
    stamps = LiveStamps(KEY_BY_SESSION)
    keys = Counter[bytes | None]()
    unchanged = 0
    settings = SimulationSettings(seed=6, invalid_share=0.2)
    for arrival in simulate_arrivals(settings, count=300):
        _, line, label = arrival
        key, value = stamps.prepare(arrival, NOW_MS)
        keys[key] += 1
        item = ev.EventDecoder().decode(line)
        if isinstance(item, ev.Event):
            assert key == item.key.encode()
        if label in (ev.MALFORMED_JSON, ev.NOT_UTF8, ev.NOT_AN_OBJECT):
            assert (key, value) == (None, line)
            unchanged += 1
    assert unchanged > 0
    assert len(keys) > 250


def test_session_key_prefers_session_then_anonymous_then_user() -> None:
    assert session_key({"session_id": "s", "anonymous_id": "a", "user_id": "u"}) == "s"
    assert session_key({"session_id": "", "anonymous_id": "a", "user_id": "u"}) == "a"
    assert session_key({"anonymous_id": 7, "user_id": "u"}) == "u"
    assert session_key({"type": "page_view"}) is None


# -- progress ----------------------------------------------------------------


def test_progress_text() -> None:
    assert format_elapsed(3725.9) == "1:02:05"
    assert format_progress(12_345, 1002.4, 65) == (
        "sent 12,345 events, 1,002 events/s, 0:01:05 elapsed"
    )


def test_progress_redraws_one_line_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream, tty=True)
    assert not progress.due(0.0)
    assert not progress.due(0.5)
    assert progress.due(1.0)
    progress.show("sent 10 events")
    assert not progress.due(1.5)
    assert progress.due(2.0)
    progress.show("sent 9 events")
    progress.warn("slow")
    progress.finish("done")
    assert stream.getvalue() == (
        "\rsent 10 events\rsent 9 events " + "\r" + " " * 13 + "\rwarning: slow\ndone\n"
    )


def test_progress_in_a_log_is_a_plain_line_every_five_seconds() -> None:
    stream = io.StringIO()
    progress = Progress(stream, tty=False)
    shown = 0
    for tenth in range(0, 121):
        if progress.due(tenth / 10):
            progress.show(f"at {tenth / 10:g}")
            shown += 1
    assert stream.getvalue() == "at 5\nat 10\n"
    assert shown == 2


def test_progress_after_a_stall_waits_a_full_period_again() -> None:
    progress = Progress(io.StringIO(), tty=False)
    progress.due(0.0)
    assert progress.due(17.0)
    assert not progress.due(17.1)
    assert progress.due(22.0)


# -- connecting --------------------------------------------------------------


def test_broker_addresses() -> None:
    assert broker_addresses("a:1, [::1]:2,b") == [("a", 1), ("::1", 2), ("b", 9092)]
    with pytest.raises(ConfigError):
        broker_addresses("a:b")
    with pytest.raises(ConfigError):
        broker_addresses(" , ")


def test_client_options_carry_sasl_credentials() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="127.0.0.1:9093",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="alice",
        sasl_password=Secret("hunter2"),
    )
    options = client_options(kafka, "simulate")
    assert options == {
        "bootstrap_servers": "127.0.0.1:9093",
        "client_id": "streamfunnel-simulate",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "alice",
        "sasl_plain_password": "hunter2",
    }


@pytest.mark.asyncio
async def test_an_unreachable_broker_fails_in_bounded_time() -> None:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    plan = TrafficPlan("t", sessions=1, connect_timeout_s=1.0)

    async with asyncio.timeout(10):
        with pytest.raises(
            BrokerError, match=f"cannot reach Kafka at 127.0.0.1:{port}"
        ):
            await produce_traffic(kafka, SimulationSettings(), plan)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"rate_per_s": 0.0}, "traffic.rate_per_s"),
        ({"sessions": 0}, "traffic.sessions"),
        ({"sessions": 1, "duration_s": 1.0}, "traffic.duration_s"),
        ({"key_by": "user"}, "traffic.key_by"),
    ],
)
def test_traffic_plans_out_of_range_are_refused(
    changes: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        TrafficPlan("t", **changes)
    assert caught.value.key == key


# -- the commands, short of Kafka --------------------------------------------


def test_both_commands_have_help() -> None:
    runner = CliRunner()
    for command in (simulate, alerts):
        result = runner.invoke(command, ["--help"])
        assert result.exit_code == 0, result.output
        options = [line for line in result.output.splitlines() if "--" in line]
        assert options


def test_simulate_writes_json_lines_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    result = CliRunner().invoke(
        simulate,
        [
            "--output",
            str(target),
            "--sessions",
            "40",
            "--seed",
            "9",
            "--industry",
            "saas",
        ],
        env={"STREAMFUNNEL_CONFIG": ""},
    )
    assert result.exit_code == 0, result.output
    lines = target.read_bytes().splitlines()
    expected = list(simulate_sessions(SimulationSettings("saas", seed=9), 40))
    assert len(lines) == len(expected)
    assert "wrote" in result.stderr
    assert "seed 9" in result.stderr
    # Written lines start now, not at the simulator's fixed start.
    first = ev.EventDecoder().decode(lines[0])
    assert isinstance(first, ev.Event)
    assert first.ts > SimulationSettings().start_ms


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sessions", "1", "--duration", "1"], "not both"),
        (
            ["--output", "-", "--rate", "5", "--sessions", "1"],
            "--rate applies to Kafka",
        ),
        (["--output", "-"], "--output needs --sessions or --duration"),
        (["--rate", "0"], "not in the range x>0"),
        (["--key-by", "user"], "'user' is not one of"),
    ],
)
def test_simulate_refuses_contradictions(args: list[str], message: str) -> None:
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 2
    assert message in result.output
