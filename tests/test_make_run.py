"""`make run` from the README: the server starts on SQLite with the in-process broker and answers /health."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.processes import server_process


def test_make_run_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`make run` migrates a fresh SQLite file, serves /health and /ready, and exits within 15 s of SIGTERM."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}", "APP_ENV": "dev"}
    with server_process(env, command=["make", "--no-print-directory", "run"]) as base_url:
        assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{base_url}/ready").json()
        assert ready["checks"] == {"database": "ok", "broker": "ok"}
    assert (tmp_path / "run.sqlite3").exists()
