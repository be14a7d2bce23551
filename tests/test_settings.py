"""Settings: read once, typed, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.platform.errors import ConfigurationError
from app.platform.settings import RateLimit, load_settings


def test_defaults_follow_spec(tmp_path: Path) -> None:
    """With nothing set, every default is SPEC's and the dev secrets are generated."""
    settings = load_settings({}, secrets_file=tmp_path / "s.json")
    assert settings.database_url == "sqlite:///./push.sqlite3"
    assert settings.redis_url is None
    assert settings.redis_prefix == "push"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert (settings.ws_max_frame, settings.ws_send_queue, settings.ws_rate, settings.ws_ping_interval) == (
        65536,
        1048576,
        100,
        25.0,
    )
    assert (settings.history_size, settings.history_ttl) == (1000, 86400)
    assert settings.rate_limit == RateLimit(600, 60)
    assert settings.allowed_origins is None
    assert set(settings.generated_secrets) == {"JWT_SECRET", "WEBHOOK_SECRET"}


def test_generated_secrets_are_shared_by_every_process(tmp_path: Path) -> None:
    """Two loads with the same secrets file agree, so a CLI token is accepted by the server."""
    first = load_settings({}, secrets_file=tmp_path / "s.json")
    second = load_settings({}, secrets_file=tmp_path / "s.json")
    assert first.jwt_secret == second.jwt_secret
    assert first.webhook_secret == second.webhook_secret
    assert (tmp_path / "s.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("WORKERS", "0"),
        ("WS_MAX_FRAME", "-1"),
        ("WS_PING_INTERVAL", "soon"),
        ("HISTORY_SIZE", "1.5"),
        ("RATE_LIMIT", "600 per minute"),
        ("RATE_LIMIT", "0/minute"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "redis+sentinel://h:26379"),
        ("REDIS_URL", "redis+sentinel://h:26379/svc/notanumber"),
        ("REDIS_URL", "redis+sentinel://h:26379,h2/svc"),
        ("REDIS_URL", "redis+cluster://h:7000/0"),
        ("REDIS_URL", "redis+cluster://h:99999"),
        ("REDIS_URL", "redis+cluster://:pw"),
        ("REDIS_URL", "memcached://h:11211"),
        ("ALLOWED_ORIGINS", "shop.example.com"),
        ("APP_ENV", "staging"),
        ("REDIS_PREFIX", "has space"),
        ("JWT_PUBLIC_KEY", "not a pem"),
        ("JWT_SECRET", "short"),
        ("WS_PER_MESSAGE_DEFLATE", "maybe"),
        ("WS_FAST_PATH", "sometimes"),
        ("EVENT_MAX_BYTES", "100"),
        ("WS_SEND_QUEUE", "65536"),  # not above the default EVENT_MAX_BYTES
    ],
)
def test_bad_value_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    """A malformed setting stops start-up with an error naming the variable."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings({variable: value}, secrets_file=tmp_path / "s.json")
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_production_refuses_generated_secrets(tmp_path: Path) -> None:
    """APP_ENV=production without configured secrets refuses to start."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"APP_ENV": "production", "WEBHOOK_SECRET": "x" * 32}, secrets_file=tmp_path / "s.json")
    assert caught.value.variable == "JWT_SECRET"
    assert not (tmp_path / "s.json").exists()


def test_production_refuses_a_short_webhook_secret(tmp_path: Path) -> None:
    """APP_ENV=production applies JWT_SECRET's 32-byte minimum to WEBHOOK_SECRET too."""
    env = {"APP_ENV": "production", "JWT_SECRET": "j" * 32, "WEBHOOK_SECRET": "x"}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env, secrets_file=tmp_path / "s.json")
    assert caught.value.variable == "WEBHOOK_SECRET"
    assert load_settings({**env, "WEBHOOK_SECRET": "w" * 32}, secrets_file=tmp_path / "s.json").is_production


def test_several_workers_need_redis(tmp_path: Path) -> None:
    """WORKERS>1 without REDIS_URL is refused, since the in-process broker is per process."""
    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        load_settings({"WORKERS": "2"}, secrets_file=tmp_path / "s.json")
    settings = load_settings(
        {"WORKERS": "2", "REDIS_URL": "redis://127.0.0.1:6379/0"}, secrets_file=tmp_path / "s.json"
    )
    assert settings.workers == 2


@pytest.mark.parametrize(
    ("url", "topology", "nodes", "service", "db", "password"),
    [
        ("redis://127.0.0.1:6379/2", "single", (), None, 0, None),
        ("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/push-master/3", "sentinel",
         (("10.0.0.1", 26379), ("10.0.0.2", 26380)), "push-master", 3, "s3cret"),
        ("redis+sentinel://sentinel.local:26379/mymaster", "sentinel", (("sentinel.local", 26379),), "mymaster", 0,
         None),
        ("redis+cluster://[::1]:7000,127.0.0.1:7001", "cluster", (("::1", 7000), ("127.0.0.1", 7001)), None, 0, None),
    ],
)  # fmt: skip
def test_redis_url_forms(
    tmp_path: Path,
    url: str,
    topology: str,
    nodes: tuple[tuple[str, int], ...],
    service: str | None,
    db: int,
    password: str | None,
) -> None:
    """REDIS_URL's three forms are parsed into one target: topology, nodes, service, database, password."""
    target = load_settings({"REDIS_URL": url}, secrets_file=tmp_path / "s.json").redis
    assert target is not None
    assert (target.topology, target.nodes, target.service, target.db, target.password) == (
        topology, nodes, service, db, password,
    )  # fmt: skip


def test_values_are_parsed(tmp_path: Path) -> None:
    """Origins, rate limits and numbers are parsed into their types."""
    settings = load_settings(
        {
            "ALLOWED_ORIGINS": "https://shop.example.com, http://localhost:3000/",
            "RATE_LIMIT": "5/second",
            "WS_PING_INTERVAL": "2.5",
            "JWT_SECRET": "s" * 32,
            "WEBHOOK_SECRET": "w" * 32,
        },
        secrets_file=tmp_path / "s.json",
    )
    assert settings.allowed_origins == ("https://shop.example.com", "http://localhost:3000")
    assert settings.rate_limit == RateLimit(5, 1)
    assert settings.ws_ping_interval == 2.5
    assert settings.generated_secrets == ()
