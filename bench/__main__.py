"""``python -m bench``: the relay benchmark (``make bench``); see docs/performance.md."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.publisher import RawPublisher
from bench.report import bars, table
from bench.scenarios import BurstResult, ConnectResult, Plan, RunResult, burst, connect_runs, relay_run
from bench.servers import WS_IMPLS, BenchEnv, ServerKind, WsImpl, raise_fd_limit

SCENARIOS = """scenarios (all run by `relay`, the default):
  broadcast   N connections of one user; publish to user:u_bcast at rising rates; max deliveries/s
              held with zero loss and p99 < 200 ms (= rate x N), with sampled p50/p99
  private     N connections of N users; publish to random user:u_<i> at rising rates; max msgs/s
              held, and p50/p99 at exactly 1,000 msg/s
  idle        server VmRSS before and after opening N idle connections: KiB per connection
  connect     N connections opened 200 at a time, each counted at its `subscribed` ack: connects/s
  connect     the connect rate again on --repeats fresh servers per N: median and best (one 1,000-socket
              round lasts half a second and varies by 15% or more; the connect bar uses the median)
  cluster     publish-path cost (RedisBroker.publish) on one Redis and a 3-shard cluster, and private
              fan-out over the cluster with two server processes (bench/cluster.py)
  server_api  POST /realtime/publish (one channel, random channels) and /realtime/broadcast (100 channels)
              at saturation from a raw keep-alive HTTP client: requests/s, events/s, p50/p99
  burst       5,000 clients at once right after start-up, then one publish to each one's channel
              (private) and, on a second fresh server, one broadcast: zero messages lost
  baseline    all of the above against Litestar's ChannelsPlugin + Redis pub/sub (bench/baseline_app.py)
and separately:
  profile     py-spy record of our server under broadcast and private load; top functions

Layout: servers on core 0 (taskset), this process (clients + publisher) on core 1. Publishing is
bare Redis PUBLISH of {"type","data"} (offset null) padded to --payload-bytes (250), without ts as
producers send it (--stamped adds ts), the same load for both servers."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Real-time relay benchmark of the WebSocket push server.",
        epilog=SCENARIOS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", nargs="?", default="relay", choices=["relay", "profile"])
    parser.add_argument("--connections", default="1000,10000", help="comma list of N (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds: N=200, short steps")
    parser.add_argument("--servers", default="ours,baseline", help="comma list of ours,baseline")
    parser.add_argument(
        "--only",
        default="fanout,burst,connect,cluster,server_api",
        help="comma list of fanout (all per-N scenarios),burst,connect,cluster,server_api (default: %(default)s)",
    )
    parser.add_argument(
        "--ws",
        default="fast",
        help="comma list of how ours is served, each run in turn (repeat one to alternate, e.g. "
        "fast,sansio,wsproto,fast,sansio,wsproto): fast (our uvicorn fast path), sansio or wsproto (stock "
        "uvicorn, WS_FAST_PATH=0) (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="connect: fresh servers per N (default %(default)s)")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--stamped", action="store_true", help="publish envelopes with ts (default: without, as producers do)"
    )
    parser.add_argument("--payload-bytes", type=int, default=250, help="envelope size (default %(default)s)")
    parser.add_argument("--step-seconds", type=float, default=None, help="seconds per ramp step (default 3)")
    parser.add_argument("--burst", type=int, default=None, help="clients in the start-up burst (default 5000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--profile-seconds", type=float, default=15.0, help="profile: seconds per load")
    parser.add_argument("--profile-out", type=Path, default=Path("bench-profile"), help="profile: output dir")
    return parser.parse_args(argv)


def _pin_to_core_1() -> str:
    try:
        if os.cpu_count() and (os.cpu_count() or 0) >= 2:
            os.sched_setaffinity(0, {1})
            return "core 1"
    except OSError as exc:
        return f"not pinned ({exc})"
    return "not pinned (one core)"


async def _connects(args: argparse.Namespace, bench: BenchEnv) -> list[ConnectResult]:
    sizes = [200] if args.quick else [int(n) for n in args.connections.split(",") if n.strip()]
    repeats = 2 if args.quick else args.repeats
    kinds: list[ServerKind] = [k for k in ("ours", "baseline") if k in args.servers.split(",")]
    results = []
    for n in sizes:
        for kind in kinds:
            print(f"== {kind}, N={n:,}, connect rate on {repeats} fresh servers", flush=True)
            try:
                results.append(await connect_runs(bench, kind, n, Plan(), repeats))
            except (RuntimeError, OSError) as exc:
                print(f"  {kind} N={n}: stopped: {exc}", flush=True)
    return results


def _connect_summary(results: list[ConnectResult]) -> str:
    lines = [
        "| server | N | connects/s median | best | server CPU ms/connect (median) | rounds incomplete |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cpu = statistics.median(r.cpu_ms_per_connect) if r.cpu_ms_per_connect else 0.0
        lines.append(
            f"| {r.kind} | {r.connections:,} | {r.p50 or 0:,.0f} | {r.best or 0:,.0f} | {cpu:.3f} | {r.incomplete} |"
        )
    return "\n".join(lines)


async def _relay(args: argparse.Namespace, bench: BenchEnv) -> tuple[list[RunResult], dict[str, Any]]:
    plan = Plan()
    if args.quick:
        plan = Plan(
            step_seconds=1.0,
            broadcast_rates=(10, 50),
            private_rates=(200, 1000),
            concurrency=100,
            burst=200,
            refine=False,
        )
    if args.step_seconds:
        plan.step_seconds = args.step_seconds
    if args.burst:
        plan.burst = args.burst
    sizes = [200] if args.quick else [int(n) for n in args.connections.split(",") if n.strip()]
    kinds: list[ServerKind] = [k for k in ("ours", "baseline") if k in args.servers.split(",")]
    only = set(args.only.split(","))
    publisher = await RawPublisher.connect(stamped=args.stamped, payload_bytes=args.payload_bytes)
    runs: list[RunResult] = []
    bursts: dict[str, dict[str, Any]] = {}
    try:
        if "fanout" in only:
            for n in sizes:
                for kind in kinds:
                    print(f"== {kind}, N={n:,}", flush=True)
                    try:
                        publisher = await publisher.reconnected()
                        runs.append(await relay_run(bench, kind, n, plan, publisher))
                    except (RuntimeError, OSError) as exc:
                        print(f"  {kind} N={n}: stopped: {exc}", flush=True)
                        failed = RunResult(kind, n)
                        failed.notes.append(str(exc))
                        runs.append(failed)
        if "burst" in only:
            for kind in kinds:
                print(f"== {kind}, start-up burst of {plan.burst:,}", flush=True)
                for broadcast in (False, True):
                    try:
                        publisher = await publisher.reconnected()
                        result: BurstResult = await burst(bench, kind, plan.burst, broadcast, publisher)
                    except (RuntimeError, OSError) as exc:
                        print(f"  {kind} burst: stopped: {exc}", flush=True)
                        continue
                    bursts.setdefault(kind, {})[result.mode] = vars(result)
    finally:
        publisher.close()
    return runs, bursts


def _ws_variants(text: str) -> list[WsImpl]:
    variants: list[WsImpl] = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        if name not in WS_IMPLS:
            raise SystemExit(f"python -m bench: --ws takes {', '.join(WS_IMPLS)}, got {name!r}")
        variants.append(name)  # type: ignore[arg-type]  # checked against WS_IMPLS
    return variants or ["fast"]


def _print_results(runs: list[RunResult], bursts: dict[str, Any], connects: list[ConnectResult]) -> None:
    if runs or bursts:
        print(table(runs, bursts))
    if connects:
        print("\n### Connect rate on fresh servers\n")
        print(_connect_summary(connects))
    print("\n### Bars\n")
    print(bars(runs, bursts, {r.connections: r.p50 for r in connects if r.kind == "ours" and r.p50 is not None}))
    for run in runs:
        for note in run.notes:
            print(f"note: {run.kind} N={run.connections}: {note}")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    fds = raise_fd_limit()
    where = _pin_to_core_1()
    print(f"bench: fd limit {fds}, load generator on {where}, servers on core 0, database {args.database}", flush=True)
    variants = _ws_variants(args.ws)
    bench = BenchEnv(database=args.database)
    results: list[tuple[WsImpl, list[RunResult], dict[str, Any], list[ConnectResult]]] = []
    started = time.perf_counter()
    try:
        bench.setup()
        if args.scenario == "profile":
            import uvloop

            from bench.profile import profile

            uvloop.run(profile(bench, args.connections, args.profile_seconds, args.profile_out))
            return 0
        import uvloop

        only = set(args.only.split(","))
        for ws in variants:
            bench.ws = ws
            if len(variants) > 1:
                print(f"\n# ws={ws}\n", flush=True)
            runs, bursts = uvloop.run(_relay(args, bench)) if only & {"fanout", "burst"} else ([], {})
            connects = uvloop.run(_connects(args, bench)) if "connect" in only else []
            results.append((ws, runs, bursts, connects))
        if "cluster" in only:
            from bench.cluster import run_cluster

            print("\n## Redis Cluster (python -m bench.cluster)\n", flush=True)
            uvloop.run(run_cluster(connections=min(int(args.connections.split(",")[0]), 1000)))
        if "server_api" in only:
            from bench.server_api import run as run_server_api

            print("\n## Server API over HTTP (python -m bench.server_api)\n", flush=True)
            uvloop.run(run_server_api(seconds=2.0 if args.quick else 5.0))
    except subprocess.CalledProcessError as exc:
        print(f"bench: setup failed: {exc}\n{exc.stderr.decode(errors='replace')}", file=sys.stderr)
        return 1
    finally:
        bench.teardown()
    print(f"\n## Relay (took {time.perf_counter() - started:.0f} s)")
    payload: list[dict[str, Any]] = []
    for ws, runs, bursts, connects in results:
        print(f"\n### ws={ws}\n" if len(results) > 1 else "")
        _print_results(runs, bursts, connects)
        payload.append(
            {
                "ws": ws,
                "runs": [r.as_dict() for r in runs],
                "bursts": bursts,
                "connects": [vars(r) for r in connects],
            }
        )
    if args.json is not None:
        args.json.write_text(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
