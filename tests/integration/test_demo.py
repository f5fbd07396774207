"""The demo, end to end: its own broker, the worker, traffic, alerts, Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.local_broker import KAFKA_LOCAL, REPO_ROOT, free_ports

pytestmark = pytest.mark.integration

# Every kind of alert and conversion the demo must show.
HEADS = ("CART abandoned", "CHECKOUT abandoned", "FORM abandoned", "MICRO", "MACRO")
SEE_ALL_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 90.0


class Demo:
    def __init__(self, run_dir: Path, *args: str) -> None:
        self.broker_port, controller_port, self.web_port = free_ports(3)
        self.run_dir = run_dir
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamfunnel",
                "demo",
                "--broker-port",
                str(self.broker_port),
                "--controller-port",
                str(controller_port),
                "--web-port",
                str(self.web_port),
                "--run-dir",
                str(run_dir),
                *args,
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def seen(self) -> set[str]:
        return {head for head in HEADS for line in self.lines if f" {head}" in line}

    def output(self) -> str:
        return "\n".join(self.lines[-80:])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_demo_shows_every_kind_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    demo = Demo(run_dir, "--rate", "120")
    deadline = time.monotonic() + SEE_ALL_TIMEOUT_S
    while demo.seen() != set(HEADS) and time.monotonic() < deadline:
        assert demo.process.poll() is None, demo.output()
        time.sleep(1)
    assert demo.seen() == set(HEADS), demo.output()

    # Ctrl-C in a terminal is SIGINT to the demo (its parts run in their own
    # process groups, so only the demo gets it and stops them in order).
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=STOP_TIMEOUT_S) == 0, demo.output()
    assert "demo stopped" in demo.lines, demo.output()
    assert port_is_free(demo.broker_port), "the broker still holds its port"
    assert port_is_free(demo.web_port), "the worker still holds its web port"
    status = subprocess.run(
        [
            sys.executable,
            str(KAFKA_LOCAL),
            "status",
            "--data-dir",
            str(run_dir / "kafka"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 3, status.stdout

    # A second run in the same place needs no clean-up.
    again = Demo(run_dir, "--duration", "20")
    assert again.process.wait(timeout=SEE_ALL_TIMEOUT_S) == 0, again.output()
    assert "streamfunnel demo" in again.lines, again.output()
    assert port_is_free(again.broker_port)
