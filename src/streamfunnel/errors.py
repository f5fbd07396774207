"""The exception hierarchy: every error streamfunnel raises derives from one root.

Invalid *events* are not exceptions: they are data (see ``events.Invalid``) that
flows to the dead-letter output. Exceptions here are for configuration and
environment problems that must stop a command before it starts.
"""

from __future__ import annotations


class StreamfunnelError(Exception):
    """Root of every error raised by streamfunnel."""


class ConfigError(StreamfunnelError):
    """A configuration value is missing, of the wrong type, or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class InputError(StreamfunnelError):
    """An input file or stream cannot be read at all (not a bad line in it)."""


class BrokerError(StreamfunnelError):
    """The Kafka broker cannot be reached or refused what was asked of it."""
