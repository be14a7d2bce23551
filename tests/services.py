"""Access to the real PostgreSQL and Redis the suite runs against, and the REQUIRE_SERVICES rule.

Without ``REQUIRE_SERVICES=1`` a test that needs an unreachable service is skipped with one line
saying why; with it (CI), the same test fails.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    """Whether a missing service fails the test instead of skipping it."""
    return os.environ.get("REQUIRE_SERVICES", "") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail under REQUIRE_SERVICES=1, with one clear line."""
    if services_required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def reachable(host: str, port: int) -> bool:
    """Whether something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def unique_name(prefix: str) -> str:
    """A name no other test run uses (databases, Redis key prefixes)."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def postgres_url(database: str) -> str:
    """The URL of ``database`` on the test server."""
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
