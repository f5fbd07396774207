"""kcat (librdkafka's command-line client), for tests that need a Kafka client
nobody on this project wrote."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

KCAT = shutil.which("kcat")
# CI installs kcat, so there a missing kcat is a broken setup, not a reason to
# skip; elsewhere the skip says how to get it.
KCAT_REQUIRED = os.environ.get("CI", "").lower() == "true"
KCAT_TIMEOUT_S = 60.0
# librdkafka's own metadata timeout, well inside the subprocess timeout.
KCAT_METADATA_TIMEOUT_S = "20"

needs_kcat = pytest.mark.skipif(
    KCAT is None and not KCAT_REQUIRED,
    reason="kcat is not on PATH (Debian: apt-get install kcat)",
)


def kcat(*args: str, stdin: str = "") -> str:
    if KCAT is None:
        pytest.fail(
            "kcat is not on PATH, but CI=true requires it (.ci/run installs it)"
        )
    result = subprocess.run(
        [KCAT, "-m", KCAT_METADATA_TIMEOUT_S, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=KCAT_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"kcat {' '.join(args)}: {result.stderr}"
    return result.stdout
