"""Command-line options that several ``streamfunnel`` commands share."""

from __future__ import annotations

from pathlib import Path

import click

from streamfunnel.rules import INDUSTRIES

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="STREAMFUNNEL_CONFIG",
    help="TOML configuration file (see deploy/streamfunnel.toml).",
)
industry_option = click.option(
    "--industry",
    type=click.Choice(INDUSTRIES),
    help="Industry preset; overrides the configuration file.",
)
bootstrap_option = click.option(
    "--bootstrap-servers",
    metavar="HOST:PORT[,...]",
    help="Kafka brokers to connect to; overrides kafka.bootstrap_servers.",
)
