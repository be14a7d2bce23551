"""The OpenAPI document is the truth: schemathesis with every check finds no 5xx, no undocumented status or
content type, and no valid request refused, for a customer and for an admin (a fixed seed, a bounded run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.processes import server_process

CONFIG = Path(__file__).parent / "contract" / "schemathesis.toml"
SEED = "20261203"
EXAMPLES = "20"


@pytest.mark.parametrize("role", ["customer", "admin"])
def test_schemathesis_finds_nothing_undocumented(
    sqlite_database: str, token_for: Callable[..., str], role: str
) -> None:
    """Every check of schemathesis passes against a server process's own /schema."""
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert binary is not None, "schemathesis is a dev dependency: make test installs it"
    env = {
        "DATABASE_URL": sqlite_database,
        "JWT_SECRET": TEST_SECRET,
        "WEBHOOK_SECRET": TEST_SECRET,
        "RATE_LIMIT": "100000/second",
        "LOG_LEVEL": "WARNING",
    }
    with server_process(env) as base_url:
        run = subprocess.run(
            [
                binary,
                "--config-file", str(CONFIG),
                "run", f"{base_url}/schema",
                "--checks", "all",
                "--exclude-checks", "allow_header_conformance",
                "--header", f"Authorization: Bearer {token_for(f'{role}_contract', role)}",
                "--seed", SEED,
                "--max-examples", EXAMPLES,
                "--workers", "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=110,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:]
