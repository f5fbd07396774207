"""The ``simulate`` and ``alerts`` commands: traffic into Kafka, alerts out of it.

Both stop cleanly on Ctrl-C or SIGTERM: ``simulate`` delivers what it has
buffered and prints its summary, ``alerts`` closes its consumer. A second Ctrl-C
aborts at once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from streamfunnel.cli_options import bootstrap_option, config_option
from streamfunnel.config import ENV_PREFIX, Config, load_config
from streamfunnel.pacing import Progress
from streamfunnel.rules import INDUSTRIES
from streamfunnel.simulation import (
    SimulationSettings,
    simulate_duration,
    simulate_sessions,
    write_lines,
)
from streamfunnel.subscription import SubscriptionPlan, subscribe
from streamfunnel.traffic import (
    KEY_BY,
    KEY_BY_NONE,
    KEY_BY_SESSION,
    TrafficPlan,
    produce_traffic,
    summary,
)

T = TypeVar("T")

_BOOTSTRAP_ENV = f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"


def _load(
    config_path: Path | None, bootstrap: str | None, industry: str | None = None
) -> Config:
    env: Mapping[str, str] = os.environ
    if bootstrap is not None:
        # Through the environment override, so that the address gets the same
        # checks as one from the file (no SASL in clear text to a remote host).
        env = {**os.environ, _BOOTSTRAP_ENV: bootstrap}
    return load_config(config_path, env=env, industry=industry)


def _run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(stop)``; the first SIGINT or SIGTERM sets ``stop``."""

    async def runner() -> T:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        handled: list[signal.Signals] = []

        def ask_to_stop() -> None:
            stop.set()
            # The next signal gets the default handling: an immediate abort.
            for signum in handled:
                loop.remove_signal_handler(signum)
            handled.clear()

        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, ask_to_stop)
            except (NotImplementedError, RuntimeError, ValueError):
                # Not the main thread, or a platform without signal support:
                # Ctrl-C then aborts instead of stopping cleanly.
                continue
            handled.append(signum)
        try:
            return await main(stop)
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    return asyncio.run(runner())


@click.command()
@click.option(
    "--industry",
    type=click.Choice(INDUSTRIES),
    help="Whose visitors to simulate; defaults to the configured industry.",
)
@click.option(
    "--seed",
    type=int,
    help="Seed of the simulation, to repeat a run's visitors; random by default.",
)
@click.option(
    "--sessions",
    type=click.IntRange(min=1),
    help="Stop after this many sessions, sent whole.",
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop after this many seconds of sending (with --output: simulate "
    "sessions starting within this many seconds).",
)
@click.option(
    "--rate",
    "rate_per_s",
    type=click.FloatRange(min=0, min_open=True),
    metavar="EVENTS_PER_S",
    help="Send this many events per second, evenly paced. Without it, events go "
    "out when simulated visitors make them (about 60 per second).",
)
@click.option(
    "--topic",
    help="Topic to send to; defaults to the first of topics.inputs.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    metavar="FILE",
    help="Write JSON lines to FILE (- for stdout) at once, instead of sending "
    "them to Kafka. Needs --sessions or --duration.",
)
@click.option(
    "--key-by",
    type=click.Choice(KEY_BY),
    default=KEY_BY_NONE,
    show_default=True,
    help="Message keys: 'session' keys each event by its session key; 'none' "
    "sends no keys, so the worker repartitions by session.",
)
@click.option(
    "--invalid-share",
    type=click.FloatRange(0, 1, max_open=True),
    default=SimulationSettings.invalid_share,
    show_default=True,
    help="Share of lines that are broken (bad JSON, missing fields, ...).",
)
@click.option(
    "--duplicate-share",
    type=click.FloatRange(0, 1, max_open=True),
    default=SimulationSettings.duplicate_share,
    show_default=True,
    help="Share of lines that are re-sent copies of an earlier event.",
)
@config_option
@bootstrap_option
def simulate(
    industry: str | None,
    seed: int | None,
    sessions: int | None,
    duration_s: float | None,
    rate_per_s: float | None,
    topic: str | None,
    output: Path | None,
    key_by: str,
    invalid_share: float,
    duplicate_share: float,
    config_path: Path | None,
    bootstrap_servers: str | None,
) -> None:
    """Send simulated clickstream traffic to Kafka, or write it as JSON lines.

    Event timestamps follow the wall clock: each event is stamped when it is
    sent, less the lateness the simulator gave it. Runs until --sessions or
    --duration is reached, or until Ctrl-C. Progress goes to stderr.
    """
    if sessions is not None and duration_s is not None:
        raise click.UsageError("give --sessions or --duration, not both")
    if output is not None:
        given = {
            "--rate": rate_per_s is not None,
            "--topic": topic is not None,
            "--key-by": key_by != KEY_BY_NONE,
            "--bootstrap-servers": bootstrap_servers is not None,
        }
        clash = [name for name, present in given.items() if present]
        if clash:
            raise click.UsageError(f"{clash[0]} applies to Kafka, not to --output")
        if sessions is None and duration_s is None:
            raise click.UsageError("--output needs --sessions or --duration")

    config = _load(config_path, bootstrap_servers, industry)
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    settings = SimulationSettings(
        industry=config.rules.industry,
        seed=seed,
        invalid_share=invalid_share,
        duplicate_share=duplicate_share,
    )
    if output is not None:
        _write(settings, output, sessions, duration_s)
        return

    plan = TrafficPlan(
        topic=topic or config.topics.inputs[0],
        rate_per_s=rate_per_s,
        sessions=sessions,
        duration_s=duration_s,
        key_by=key_by,
    )
    pace = "as simulated" if rate_per_s is None else f"at {rate_per_s:g} events/s"
    keys = "keyed by session" if key_by == KEY_BY_SESSION else "without keys"
    click.echo(
        f"simulating {settings.industry} traffic (seed {seed}) to {plan.topic} "
        f"{pace}, {keys}; Ctrl-C stops",
        err=True,
    )
    progress = Progress(sys.stderr, sys.stderr.isatty())
    result = _run_until_signal(
        lambda stop: produce_traffic(
            config.kafka, settings, plan, progress=progress, stop=stop
        )
    )
    progress.finish(summary(result, plan.topic))


def _write(
    settings: SimulationSettings,
    output: Path,
    sessions: int | None,
    duration_s: float | None,
) -> None:
    # Written files start now as well, so that they can be fed to a live worker.
    now_ms = time.time_ns() // 1_000_000
    settings = replace(settings, start_ms=now_ms)
    if sessions is not None:
        lines = simulate_sessions(settings, sessions)
    else:
        lines = simulate_duration(settings, duration_s or 0.0)
    if str(output) == "-":
        written = write_lines(lines, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        try:
            with output.open("wb") as stream:
                written = write_lines(lines, stream)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write {output}: {exc.strerror}"
            ) from exc
    click.echo(
        f"wrote {written:,} lines of {settings.industry} traffic "
        f"(seed {settings.seed}) to {'stdout' if str(output) == '-' else output}",
        err=True,
    )


@click.command()
@config_option
@bootstrap_option
@click.option(
    "--conversions/--no-conversions",
    default=False,
    show_default=True,
    help="Also show micro and macro conversions and completed sequences.",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    help="Show what is already on the topics, from the oldest record kept; by "
    "default only records published from now on.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print each record as one compact JSON line instead of a readable one.",
)
@click.option(
    "--max",
    "max_records",
    type=click.IntRange(min=1),
    metavar="N",
    help="Stop after showing N records.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop after this many seconds, whatever has arrived.",
)
def alerts(
    config_path: Path | None,
    bootstrap_servers: str | None,
    conversions: bool,
    from_beginning: bool,
    as_json: bool,
    max_records: int | None,
    timeout_s: float | None,
) -> None:
    """Show abandonment alerts (and conversions) as the worker publishes them.

    Reads every partition without joining a consumer group, so it commits
    nothing and never takes records away from another reader. Starts at the
    newest record unless --from-beginning; runs until --max, --timeout or
    Ctrl-C. Times are UTC. Malformed records are skipped with a warning on
    stderr.
    """
    config = _load(config_path, bootstrap_servers)
    topics: tuple[str, ...] = (config.topics.abandonments,)
    if conversions:
        topics += (config.topics.conversions,)
    plan = SubscriptionPlan(
        topics=topics,
        from_beginning=from_beginning,
        as_json=as_json,
        max_records=max_records,
        timeout_s=timeout_s,
    )
    _run_until_signal(
        lambda stop: subscribe(config.kafka, plan, sys.stdout, sys.stderr, stop=stop)
    )
