"""Replay throughput against the cost of only decoding the same lines.

Generates a seeded, realistic clickstream (the simulator's defaults: GA4 and
Segment names, duplicates, a little disorder, 0.5 % invalid lines), then times,
in alternating rounds within one process:

- decode only: ``orjson.loads`` of every line, the floor for any engine;
- replay: the whole engine, decoding included, writing records to a null sink.

It prints events/s for both and their ratio (median of the rounds). With
``--pure-too`` it also runs the same measurement on the interpreted sources in
a subprocess, to show what compiling the core buys. Figures, not assertions:
the machines are shared, so compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

import streamfunnel.engine
from streamfunnel.config import build_rules
from streamfunnel.replay import replay
from streamfunnel.simulation import SimulationSettings, simulate_sessions
from streamfunnel.tuning import tune_for_throughput


class NullSink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        return len(data)  # type: ignore[arg-type]


def decode_only(lines: list[bytes]) -> float:
    loads = orjson.loads
    error = orjson.JSONDecodeError
    started = time.perf_counter()
    for line in lines:
        # Not contextlib.suppress: its per-line cost would be timed as decoding.
        try:  # noqa: SIM105
            loads(line)
        except error:
            pass
    return time.perf_counter() - started


def replay_all(lines: list[bytes], industry: str) -> tuple[float, int]:
    rules = build_rules({"industry": industry})
    started = time.perf_counter()
    result = replay(lines, rules, NullSink())  # type: ignore[arg-type]
    return time.perf_counter() - started, result.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40_000)
    parser.add_argument("--industry", default="ecommerce")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pure-too", action="store_true")
    parser.add_argument("--label", default="")
    args = parser.parse_args()

    settings = SimulationSettings(industry=args.industry, seed=args.seed)
    lines = list(simulate_sessions(settings, args.sessions))
    tune_for_throughput()

    decode_s: list[float] = []
    replay_s: list[float] = []
    records = 0
    for _ in range(args.rounds):
        decode_s.append(decode_only(lines))
        elapsed, records = replay_all(lines, args.industry)
        replay_s.append(elapsed)

    n = len(lines)
    decode = statistics.median(decode_s)
    whole = statistics.median(replay_s)
    compiled = Path(streamfunnel.engine.__file__ or "").suffix != ".py"
    label = args.label or ("compiled core" if compiled else "interpreted core")
    print(
        f"{label}: {n:,} lines ({args.sessions:,} {args.industry} sessions, "
        f"{records:,} records), median of {args.rounds} rounds"
    )
    print(f"  decode only (orjson.loads)  {n / decode:>12,.0f} lines/s")
    print(f"  replay (whole engine)       {n / whole:>12,.0f} lines/s")
    print(f"  replay / decode time        {whole / decode:>12.2f} x")
    sys.stdout.flush()

    if args.pure_too:
        run_interpreted(args)


def run_interpreted(args: argparse.Namespace) -> None:
    """The same benchmark on plain .py copies of the package, in a subprocess."""
    package = Path(streamfunnel.engine.__file__ or "").parent
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "streamfunnel"
        shutil.copytree(package, target, ignore=shutil.ignore_patterns("*.so"))
        env = {**os.environ, "PYTHONPATH": scratch}
        command = [
            sys.executable,
            __file__,
            "--sessions",
            str(args.sessions),
            "--industry",
            args.industry,
            "--rounds",
            str(args.rounds),
            "--seed",
            str(args.seed),
            "--label",
            "interpreted core",
        ]
        subprocess.run(command, env=env, check=True)


if __name__ == "__main__":
    main()
