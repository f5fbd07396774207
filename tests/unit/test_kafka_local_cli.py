"""deploy/kafka-local/kafka-local refuses bad input and environments clearly.

None of these start a broker: each one fails (or answers) before Java runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local_broker import KAFKA_LOCAL, free_ports

SCRIPT_TIMEOUT_S = 60.0


def kafka_local(
    *args: str, env: dict[str, str] | None = None, script: Path = KAFKA_LOCAL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("start", "--controller-port"),
        ("stop", "--data-dir"),
        ("status", "--data-dir"),
    ],
)
def test_every_command_has_help(command: str, option: str) -> None:
    result = kafka_local(command, "--help")
    assert result.returncode == 0, result.stderr
    assert option in result.stdout


def test_status_of_a_data_dir_without_broker_is_stopped(tmp_path: Path) -> None:
    result = kafka_local("status", "--data-dir", str(tmp_path / "never-used"))
    assert result.returncode == 3
    assert result.stdout.strip() == "stopped"


def test_stop_without_broker_succeeds_every_time(tmp_path: Path) -> None:
    for _ in range(2):
        result = kafka_local("stop", "--data-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "not running" in result.stderr


def test_start_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        result = kafka_local(
            "start",
            "--port",
            str(port),
            "--controller-port",
            str(controller_port),
            "--data-dir",
            str(tmp_path),
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "broker.log").exists()


def test_start_refuses_the_same_port_for_both_listeners(tmp_path: Path) -> None:
    result = kafka_local(
        "start",
        "--port",
        "9500",
        "--controller-port",
        "9500",
        "--data-dir",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "must differ" in result.stderr


@pytest.mark.parametrize("port", ["0", "65536", "ninety"])
def test_start_rejects_an_invalid_port(port: str) -> None:
    result = kafka_local("start", "--port", port)
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_start_without_java_says_how_to_get_it(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path / "empty-bin")
    result = kafka_local(
        "start",
        "--port",
        str(port),
        "--controller-port",
        str(controller_port),
        "--data-dir",
        str(tmp_path / "data"),
        env=env,
    )
    assert result.returncode == 1
    assert "java not found on PATH" in result.stderr
    assert "JAVA_HOME" in result.stderr


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java but no Maven")
def test_start_without_maven_says_how_to_get_it(tmp_path: Path) -> None:
    # A copy of the script in a fresh tree has no cached classpath, so it has
    # to ask Maven; a PATH holding only java hides Maven from it.
    copy = tmp_path / "deploy" / "kafka-local"
    copy.mkdir(parents=True)
    for name in ("kafka-local", "pom.xml", "log4j2.properties"):
        shutil.copy2(KAFKA_LOCAL.parent / name, copy / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = shutil.which("java")
    assert java is not None
    (bin_dir / "java").symlink_to(os.path.realpath(java))
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(bin_dir)
    port, controller_port = free_ports(2)

    result = kafka_local(
        "start",
        "--port",
        str(port),
        "--controller-port",
        str(controller_port),
        "--data-dir",
        str(tmp_path / "data"),
        env=env,
        script=copy / "kafka-local",
    )
    assert result.returncode == 1
    assert "mvn not found on PATH" in result.stderr
    assert not (tmp_path / "data" / "broker.log").exists()
