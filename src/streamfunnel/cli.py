"""The ``streamfunnel`` command line."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import IO

import click

from streamfunnel import __version__
from streamfunnel.cli_options import bootstrap_option, config_option, industry_option
from streamfunnel.config import load_config
from streamfunnel.errors import StreamfunnelError

logger = logging.getLogger(__name__)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level.lower() != "debug":
        # aiokafka narrates every subscription and group change at info level,
        # which buries the command's own output.
        logging.getLogger("aiokafka").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamfunnel")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    envvar="STREAMFUNNEL_LOG_LEVEL",
    help="Log verbosity (logs go to stderr).",
)
def cli(log_level: str) -> None:
    """Micro conversions and funnel abandonment, in real time, from Kafka."""
    _configure_logging(log_level)


@cli.command()
@click.argument("events", type=click.Path(dir_okay=False, allow_dash=True))
@industry_option
@config_option
@click.option(
    "--dead-letter",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write invalid and late lines, with their reason, to this file.",
)
@click.option("--quiet", is_flag=True, help="No progress or summary on stderr.")
def replay(
    events: str,
    industry: str | None,
    config_path: Path | None,
    dead_letter: Path | None,
    quiet: bool,
) -> None:
    """Run EVENTS (JSON lines, or - for stdin) through the funnel rules offline.

    Output records go to stdout as JSON lines; progress and a summary go to
    stderr. End of input ends every open session.
    """
    from streamfunnel.replay import replay as run_replay
    from streamfunnel.replay import summary
    from streamfunnel.tuning import tune_for_throughput

    rules = load_config(config_path, industry=industry).rules
    tune_for_throughput()
    with contextlib.ExitStack() as files:
        source = sys.stdin.buffer if events == "-" else _open(files, events, "rb")
        sink = None if dead_letter is None else _open(files, str(dead_letter), "wb")
        progress = None if quiet else sys.stderr
        try:
            result = run_replay(source, rules, sys.stdout.buffer, sink, progress)
        except OSError as exc:
            raise click.ClickException(f"reading {events} failed: {exc}") from exc
        sys.stdout.buffer.flush()
    if not quiet:
        sys.stderr.write(summary(result, rules))


def _open(files: contextlib.ExitStack, path: str, mode: str) -> IO[bytes]:
    """Open ``path`` for the command's duration, or fail with a one-line message."""
    try:
        handle: IO[bytes] = files.enter_context(open(path, mode))  # noqa: SIM115
    except OSError as exc:
        verb = "read" if "r" in mode else "write"
        raise click.ClickException(f"cannot {verb} {path}: {exc.strerror}") from exc
    return handle


@cli.command()
@config_option
@industry_option
@click.pass_context
def worker(ctx: click.Context, config_path: Path | None, industry: str | None) -> None:
    """Consume clickstream topics and publish conversions and alerts live.

    Runs until SIGTERM or Ctrl-C, then commits what it processed and stops.
    """
    from streamfunnel.tuning import tune_for_throughput
    from streamfunnel.worker.app import run_worker

    config = load_config(config_path, industry=industry)
    tune_for_throughput()
    level = ctx.find_root().params.get("log_level") or "info"
    run_worker(config, level)


@cli.command()
@config_option
@industry_option
@click.option(
    "--rate",
    "rate_per_s",
    type=click.FloatRange(min=0, min_open=True),
    default=40.0,
    show_default=True,
    help="Simulated events per second.",
)
@bootstrap_option
@click.option(
    "--broker-port",
    type=click.IntRange(1, 65534),
    default=9092,
    show_default=True,
    help="Port of the local broker the demo starts.",
)
@click.option(
    "--controller-port",
    type=click.IntRange(1, 65535),
    help="Port of the local broker's KRaft controller  [default: broker port + 1].",
)
@click.option(
    "--web-port",
    type=click.IntRange(1, 65535),
    default=6066,
    show_default=True,
    help="Port of the worker's health page.",
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop by itself after this long (default: run until Ctrl-C).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".run/demo"),
    show_default=True,
    help="Where the demo keeps its broker data, worker state and logs.",
)
def demo(
    config_path: Path | None,
    industry: str | None,
    rate_per_s: float,
    bootstrap_servers: str | None,
    broker_port: int,
    controller_port: int | None,
    web_port: int,
    duration_s: float | None,
    run_dir: Path,
) -> None:
    """Run everything locally: a Kafka broker, the worker, simulated traffic,
    and the alerts as they are published. Ctrl-C stops it all."""
    from streamfunnel.demo import DemoPlan, run_demo

    config = load_config(config_path, industry=industry)
    plan = DemoPlan(
        run_dir=run_dir.resolve(),
        industry=industry,
        rate_per_s=rate_per_s,
        broker_port=broker_port,
        controller_port=controller_port,
        web_port=web_port,
        bootstrap_servers=bootstrap_servers,
        duration_s=duration_s,
    )
    run_demo(plan, config, config_path)


def _register_traffic_commands() -> None:
    from streamfunnel.cli_traffic import alerts, simulate

    cli.add_command(simulate)
    cli.add_command(alerts)


_register_traffic_commands()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except StreamfunnelError as exc:
        sys.stderr.write(f"streamfunnel: {exc}\n")
        sys.exit(2)
    except BrokenPipeError:
        # Piping into `head` closes stdout early; that is not an error.
        sys.exit(0)
