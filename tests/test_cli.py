"""``python -m app publish`` refuses, before connecting anywhere, an event a server would drop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.ops.cli import cli
from tests.conftest import TEST_SECRET


@pytest.fixture
def run_publish(tmp_path: Path):
    """Run ``publish`` with a Redis that cannot be reached: whatever is refused must be refused first."""

    def run(*args: str, **env: str):
        environment = {
            "JWT_SECRET": TEST_SECRET,
            "WEBHOOK_SECRET": TEST_SECRET,
            "APP_ENV": "test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            **env,
        }
        return CliRunner().invoke(cli, ["publish", *args], env=environment)

    return run


def test_publish_refuses_an_event_over_event_max_bytes(run_publish) -> None:
    """An event over EVENT_MAX_BYTES is a clear error naming the setting, and nothing is sent."""
    data = json.dumps({"blob": "x" * 3000})
    result = run_publish("order:o1", "tracking.eta", data, EVENT_MAX_BYTES="2048")
    assert result.exit_code == 1
    assert "over EVENT_MAX_BYTES (2048)" in result.output
    assert "cannot connect" not in result.output


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("order:o1", "Bad Type", "{}"), "TYPE"),
        (("order:o1", "tracking.eta", '"not an object"'), "JSON"),
        (("order:o1", "tracking.eta", "[" * 40 + "]" * 40), "JSON"),
        (("nonsense", "tracking.eta", "{}"), "CHANNEL"),
    ],
)
def test_publish_refuses_a_bad_type_data_or_channel(run_publish, args: tuple[str, str, str], hint: str) -> None:
    """A bad type, data that is no object or too deep, or a bad channel is a usage error naming the argument."""
    result = run_publish(*args)
    assert result.exit_code == 2
    assert hint in result.output
    assert "cannot connect" not in result.output
