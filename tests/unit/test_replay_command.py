"""The replay command end to end, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from streamfunnel import vocabulary as v

from .builders import SECOND, T0, raw


def streamfunnel(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamfunnel", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def lines(*docs: dict[str, object]) -> bytes:
    return b"".join(orjson.dumps(d) + b"\n" for d in docs)


def test_replay_writes_records_to_stdout_and_summary_to_stderr(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        lines(
            raw(v.PAGE_VIEW, T0),
            raw(v.ADD_TO_CART, T0 + SECOND, product_id="p", price=4),
        )
        + b"not json\n\n"
        + lines(raw(v.PAGE_VIEW, T0 - 10 * 60 * SECOND))
    )
    dead = tmp_path / "dead.jsonl"
    result = streamfunnel("replay", str(events), "--dead-letter", str(dead))
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["type"] for r in records] == ["micro_conversion", "abandonment"]
    stderr = result.stderr.decode()
    assert "invalid           1 (malformed_json 1)" in stderr
    assert "late              1" in stderr
    assert "abandonments      cart 1" in stderr
    assert "funnel ecommerce:" in stderr
    reasons = [orjson.loads(line)["reason"] for line in dead.read_bytes().splitlines()]
    assert reasons == ["malformed_json", "late"]


def test_replay_reads_stdin_and_takes_industry() -> None:
    result = streamfunnel(
        "replay",
        "-",
        "--industry",
        "saas",
        "--quiet",
        stdin=lines(raw(v.DEMO_REQUEST, T0)),
    )
    assert result.returncode == 0
    [record] = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert (record["type"], record["name"]) == ("macro_conversion", "demo_request")
    assert result.stderr == b""


def test_replay_unreadable_file_is_one_line_error(tmp_path: Path) -> None:
    result = streamfunnel("replay", str(tmp_path / "nope.jsonl"))
    assert result.returncode != 0
    assert result.stdout == b""
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert "nope.jsonl" in result.stderr.decode()


def test_replay_bad_configuration_is_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[session]\ntimeout_s = -5\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"")
    result = streamfunnel("replay", str(events), "--config", str(config))
    assert result.returncode == 2
    message = result.stderr.decode().strip()
    assert len(message.splitlines()) == 1
    assert "session.timeout_s" in message


def test_every_subcommand_has_help() -> None:
    commands = ("replay", "worker", "demo", "simulate", "alerts")
    for args in (["--help"], *([name, "--help"] for name in commands)):
        result = streamfunnel(*args)
        assert result.returncode == 0
        assert b"Usage:" in result.stdout
