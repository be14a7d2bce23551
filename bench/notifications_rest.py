"""REST hot paths of the bell: ``unread-count``, ``counts`` (each also revalidated: 304) and the first page.

``python -m bench.notifications_rest`` seeds 1,000,000 notifications over 10,000 customers into a
PostgreSQL database (once; ``--skip-seed`` reuses it), serves it with ``python -m app serve`` pinned
to core 0, and drives each endpoint with wrk (``apt-get install wrk``) pinned to core 1, every
request with the token of one user in turn. ``unread-count`` and ``counts`` are measured twice:
fresh (200 with a body) and revalidated, each request carrying its user's ``If-None-Match`` (304,
how a polling bell mostly sees them). It prints requests/s and the latency distribution, and the
EXPLAIN ANALYZE of the queries for the user with the most notifications.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import jwt

from app.services.inbox_states import VISIBLE

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-notifications-secret-0123456789abcdef"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
COUNT_SQL = "SELECT count(*) FROM notifications WHERE user_id = $1 AND is_read = false AND sent_at IS NOT NULL"
COUNTS_SQL = (  # what GET /notifications/counts runs (app/services/inbox_states.py)
    "SELECT (SELECT count(*) FROM notifications WHERE user_id = $1 AND seen_at IS NULL AND {v}) AS unseen,"
    " (SELECT count(*) FROM notifications WHERE user_id = $1 AND is_read = false AND {v}) AS unread,"
    " (SELECT count(*) FROM notifications WHERE user_id = $1 AND {v}) AS total"
)
PAGE_SQL = (
    "SELECT * FROM notifications WHERE user_id = $1 AND sent_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 21"
)
WRK_SCRIPT = """
tokens = {%s}
etags = {%s}
counter = 0
request = function()
  counter = counter + 1
  local i = (counter %% #tokens) + 1
  local headers = {["Authorization"] = "Bearer " .. tokens[i]}
  if #etags > 0 then headers["If-None-Match"] = etags[i] end
  return wrk.format("GET", "%s", headers)
end
"""
ENDPOINTS = (
    ("/notifications/unread-count", False),
    ("/notifications/unread-count", True),
    ("/notifications/counts", False),
    ("/notifications/counts", True),
    ("/notifications?limit=20", False),
)


def _database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def _create_database(name: str) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def _seed(name: str) -> None:
    """1,000,000 notifications over 10,000 customers (and the vendors of their 100,000 orders)."""
    env = {**os.environ, "DATABASE_URL": _database_url(name)}
    command = [sys.executable, "-m", "app", "seed", "--orders", "100000", "--customers", "10000"]
    subprocess.run([*command, "--notifications", "1000000"], cwd=ROOT, env=env, check=True)


async def _users_with_notifications(name: str, heaviest_first: bool = False) -> list[str]:
    """The ids of users who have notifications (after refreshing the planner's statistics)."""
    connection = await asyncpg.connect(_database_url(name))
    try:
        await connection.execute("VACUUM (ANALYZE) notifications")  # as autovacuum would after a bulk load
        order = " ORDER BY count(*) DESC" if heaviest_first else ""
        rows = await connection.fetch(f"SELECT user_id FROM notifications GROUP BY user_id{order}")
    finally:
        await connection.close()
    return [row["user_id"] for row in rows]


async def _explain(name: str) -> str:
    connection = await asyncpg.connect(_database_url(name))
    try:
        heaviest = await connection.fetchval(
            "SELECT user_id FROM notifications GROUP BY user_id ORDER BY count(*) DESC LIMIT 1"
        )
        plans = []
        for sql in (COUNT_SQL, COUNTS_SQL.format(v=VISIBLE), PAGE_SQL):
            rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, heaviest)
            plans.append(sql.replace("$1", f"'{heaviest}'") + "\n" + "\n".join(row[0] for row in rows))
        return "\n\n".join(plans)
    finally:
        await connection.close()


def _token(user_id: str) -> str:
    return jwt.encode({"sub": user_id, "role": "customer", "exp": int(time.time()) + 3600}, SECRET, "HS256")


def _serve(name: str, port: int, redis: bool) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(name),
        "JWT_SECRET": SECRET,
        "WEBHOOK_SECRET": SECRET,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT": "100000000/minute",
        "REDIS_PREFIX": f"bench-rest-{os.getpid()}",
    }
    if redis:
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    else:
        env.pop("REDIS_URL", None)
    return subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env)


def _wait_healthy(base: str, deadline_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {base} did not start")


def _etags(base: str, path: str, tokens: list[str]) -> list[str]:
    """Each user's current ETag of ``path``: what their next poll sends as ``If-None-Match``."""
    with httpx.Client(base_url=base) as client:
        return [client.get(path, headers={"Authorization": f"Bearer {token}"}).headers["etag"] for token in tokens]


def _lua_strings(values: list[str]) -> str:
    return ",".join("'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'" for value in values)


def _wrk(
    base: str, path: str, tokens: list[str], seconds: int, connections: int, etags: list[str] | None = None
) -> tuple[float, dict[str, str]]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (_lua_strings(tokens), _lua_strings(etags or []), path))
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s"]
    output = subprocess.run([*command, script.name, base], capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        latency["non-2xx"] = errors.group(1)
    return rate, latency


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    import asyncio

    parser = argparse.ArgumentParser(prog="python -m bench.notifications_rest", description=__doc__)
    parser.add_argument("--database", default="bench_notifications", help="PostgreSQL database name")
    parser.add_argument("--skip-seed", action="store_true", help="reuse an already seeded database")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (concurrency)")
    parser.add_argument("--users", type=int, default=2000, help="distinct users (tokens) the load rotates over")
    parser.add_argument("--no-redis", action="store_true", help="serve without REDIS_URL (in-memory rate limiter)")
    parser.add_argument(
        "--heaviest", action="store_true", help="rotate over the users with the most notifications, not any users"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    asyncio.run(_create_database(args.database))
    if not args.skip_seed:
        _seed(args.database)
    users = asyncio.run(_users_with_notifications(args.database, args.heaviest))[: args.users]
    tokens = [_token(user) for user in users]
    port = 18000 + os.getpid() % 1000
    base = f"http://127.0.0.1:{port}"
    server = _serve(args.database, port, redis=not args.no_redis)
    try:
        _wait_healthy(base)
        with httpx.Client(base_url=base) as client:  # first sight of every user, outside the measurement
            for token in tokens:
                client.get("/notifications/unread-count", headers={"Authorization": f"Bearer {token}"})
        print(f"{len(tokens)} users, {args.connections} connections, {args.seconds} s per endpoint, server on core 0")
        print(f"{'endpoint':<40} {'req/s':>9} {'p50':>9} {'p75':>9} {'p90':>9} {'p99':>9}")
        for path, revalidated in ENDPOINTS:
            etags = _etags(base, path, tokens) if revalidated else None
            rate, latency = _wrk(base, path, tokens, args.seconds, args.connections, etags)
            cells = " ".join(f"{latency.get(p, '-'):>9}" for p in ("50", "75", "90", "99"))
            label = f"{path} (304)" if revalidated else path
            print(
                f"{label:<40} {rate:>9.0f} {cells}"
                + (f"  non-2xx: {latency['non-2xx']}" if "non-2xx" in latency else "")
            )
    finally:
        server.terminate()
        server.wait(timeout=15)
    print("\n" + asyncio.run(_explain(args.database)))


if __name__ == "__main__":
    main()
