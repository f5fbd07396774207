"""Bytes per open session in the changelog: the size of ``dump_session``.

Runs simulated traffic through the engine and, at regular points, measures the
snapshot of every open session, as the worker would write it. Prints the mean,
median and 99th percentile, and the total for the open sessions.
"""

from __future__ import annotations

import argparse
import statistics

from streamfunnel.config import build_rules
from streamfunnel.engine import FunnelEngine, decoder_for
from streamfunnel.events import Event
from streamfunnel.simulation import SimulationSettings, simulate_sessions
from streamfunnel.snapshots import dump_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--industry", default="ecommerce")
    parser.add_argument(
        "--every", type=int, default=20_000, help="lines between samples"
    )
    args = parser.parse_args()

    rules = build_rules({"industry": args.industry})
    engine = FunnelEngine(rules)
    decoder = decoder_for(rules)
    sizes: list[int] = []
    open_counts: list[int] = []
    lines = simulate_sessions(
        SimulationSettings(industry=args.industry, seed=5), args.sessions
    )
    for n, line in enumerate(lines, start=1):
        item = decoder.decode(line)
        if isinstance(item, Event):
            engine.ingest(item)
            engine.outbox.clear()
        if n % args.every == 0:
            sample = [len(dump_session(s, 0)) for s in engine.sessions.values()]
            sizes.extend(sample)
            open_counts.append(len(sample))

    sizes.sort()
    mean_open = statistics.mean(open_counts)
    print(
        f"{args.industry}: {len(open_counts)} samples, {mean_open:,.0f} open sessions"
    )
    median, p99 = sizes[len(sizes) // 2], sizes[int(len(sizes) * 0.99)]
    print(
        f"  bytes per open session: mean {statistics.mean(sizes):,.0f}, "
        f"median {median:,}, p99 {p99:,}"
    )


if __name__ == "__main__":
    main()
