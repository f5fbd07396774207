"""Running `streamfunnel worker` as a subprocess, the way users run it.

Each test gets its own app id (consumer group and internal topics), topics,
state directory and web port, so tests sharing one broker never meet.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.local_broker import REPO_ROOT, free_ports

# Joining the group, creating internal topics and recovering the changelog takes
# a few seconds on an idle machine, more on a loaded two-core CI runner.
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0


@dataclass
class WorkerTopics:
    source: str
    abandonments: str
    conversions: str
    metrics: str
    dead_letter: str

    def outputs(self) -> list[str]:
        return [self.abandonments, self.conversions, self.metrics, self.dead_letter]


def worker_topics(unique_name: Callable[[str], str]) -> WorkerTopics:
    return WorkerTopics(
        source=unique_name("events"),
        abandonments=unique_name("abandonments"),
        conversions=unique_name("conversions"),
        metrics=unique_name("metrics"),
        dead_letter=unique_name("deadletter"),
    )


class WorkerProcess:
    """One `python -m streamfunnel worker` with its configuration in env vars."""

    def __init__(
        self,
        bootstrap: str,
        topics: WorkerTopics,
        app_id: str,
        state_dir: Path,
        log_path: Path,
        **settings: str,
    ) -> None:
        self.web_port = free_ports(1)[0]
        self.log_path = log_path
        self.env = {
            "PATH": "/usr/bin:/bin",
            "STREAMFUNNEL_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMFUNNEL_TOPICS_INPUTS": topics.source,
            "STREAMFUNNEL_TOPICS_ABANDONMENTS": topics.abandonments,
            "STREAMFUNNEL_TOPICS_CONVERSIONS": topics.conversions,
            "STREAMFUNNEL_TOPICS_METRICS": topics.metrics,
            "STREAMFUNNEL_TOPICS_DEAD_LETTER": topics.dead_letter,
            "STREAMFUNNEL_TOPICS_PARTITIONS": "2",
            "STREAMFUNNEL_WORKER_APP_ID": app_id,
            "STREAMFUNNEL_WORKER_STATE_DIR": str(state_dir),
            "STREAMFUNNEL_WORKER_WEB_PORT": str(self.web_port),
        }
        for name, value in settings.items():
            self.env[f"STREAMFUNNEL_{name.upper()}"] = value
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streamfunnel", "worker"],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def health(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.web_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                doc: dict[str, Any] = json.loads(response.read())
                return doc
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_ready(self) -> None:
        """Until every partition has been processed at least once (ticks do it)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_tail()}")
            doc = self.health()
            if doc is not None and len(doc.get("partitions", {})) == 2:
                return
            time.sleep(0.25)
        raise TimeoutError(
            f"worker not ready in {READY_TIMEOUT_S:g}s:\n{self.log_tail()}"
        )

    def stop(self) -> int | None:
        """SIGTERM, as a process manager would; SIGKILL only if it hangs."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
                raise
        return process.returncode

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
