"""The one typed settings object, read once from the environment at start-up.

Nothing else in the project reads the environment: every module takes what it needs from
:class:`Settings`. A bad value raises :class:`~app.platform.errors.ConfigurationError` naming the
variable, so start-up stops with a message an operator can act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from app.platform.devsecrets import load_or_create_dev_secrets
from app.platform.errors import ConfigurationError
from channels.redis_target import RedisTarget, parse_redis_url

__all__ = ["RateLimit", "Settings", "load_settings"]

AppEnv = Literal["dev", "test", "production"]

_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")


class RateLimit(msgspec.Struct, frozen=True):
    """A number of requests allowed per window of seconds."""

    requests: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse ``600/minute`` style limits.

        Raises:
            ValueError: for anything else.
        """
        match = _RATE_PATTERN.match(text)
        if not match or int(match.group(1)) < 1:
            raise ValueError("expected '<count>/<second|minute|hour|day>' with a count of at least 1")
        return cls(requests=int(match.group(1)), window_seconds=_RATE_UNITS[match.group(2)])


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of SPEC "Running it", typed and validated."""

    database_url: str = "sqlite:///./push.sqlite3"
    redis_url: str | None = None
    redis: RedisTarget | None = None
    """``REDIS_URL`` parsed: one server, Sentinel or Cluster (None: the in-process broker)."""
    jwt_secret: str
    jwt_public_key: str | None = None
    webhook_secret: str
    allowed_origins: tuple[str, ...] | None = None
    redis_prefix: str = "push"
    app_env: AppEnv = "dev"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    smtp_url: str | None = None
    notify_webhook_url: str | None = None
    notify_webhook_secret: str | None = None
    ws_max_frame: int = 65536
    ws_send_queue: int = 1048576
    ws_rate: int = 100
    ws_ping_interval: float = 25.0
    ws_per_message_deflate: bool = False
    ws_fast_path: bool = True
    """``WS_FAST_PATH``: our uvicorn classes (``app/realtime/fast_path/``) where they pass their checks, else stock."""
    history_size: int = 1000
    history_ttl: int = 86400
    event_max_bytes: int = 65536
    rate_limit: RateLimit = RateLimit(requests=600, window_seconds=60)
    log_level: str = "INFO"
    generated_secrets: tuple[str, ...] = ()
    """Names of the secrets that were generated for development rather than configured."""

    @property
    def is_production(self) -> bool:
        """Whether the server runs with production safeguards (no demo login, no dev secrets)."""
        return self.app_env == "production"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigurationError(name, f"expected an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigurationError(name, f"must be {bound}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigurationError(name, f"expected a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(name, f"expected true or false, got {raw!r}")


def _optional(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    return raw or None


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...], default: str | None = None) -> str | None:
    value = _optional(env, name) or default
    if value is not None and not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ConfigurationError(name, f"must start with one of {', '.join(s + '://' for s in schemes)}")
    return value


def _origins(env: Mapping[str, str]) -> tuple[str, ...] | None:
    raw = _optional(env, "ALLOWED_ORIGINS")
    if raw is None:
        return None
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        if not re.match(r"^https?://[^/\s]+$", origin):
            raise ConfigurationError("ALLOWED_ORIGINS", f"{origin!r} is not an origin like https://shop.example.com")
    return origins


def _public_key(env: Mapping[str, str]) -> str | None:
    key = _optional(env, "JWT_PUBLIC_KEY")
    if key is not None and "BEGIN PUBLIC KEY" not in key:
        raise ConfigurationError("JWT_PUBLIC_KEY", "expected a PEM public key (-----BEGIN PUBLIC KEY-----)")
    return key.replace("\\n", "\n") if key else None


def load_settings(env: Mapping[str, str] | None = None, secrets_file: Path | None = None) -> Settings:
    """Build the settings from the environment (``os.environ`` by default).

    Args:
        env: the variables to read; tests pass their own mapping.
        secrets_file: where generated dev secrets are kept (default ``./.dev-secrets.json``).

    Raises:
        ConfigurationError: naming the variable whose value is bad.
    """
    env = os.environ if env is None else env
    app_env = env.get("APP_ENV", "dev").strip() or "dev"
    if app_env not in ("dev", "test", "production"):
        raise ConfigurationError("APP_ENV", f"expected dev, test or production, got {app_env!r}")

    jwt_secret = _optional(env, "JWT_SECRET")
    webhook_secret = _optional(env, "WEBHOOK_SECRET")
    generated: list[str] = []
    if jwt_secret is None or webhook_secret is None:
        missing = [
            name for name, value in (("JWT_SECRET", jwt_secret), ("WEBHOOK_SECRET", webhook_secret)) if not value
        ]
        if app_env == "production":
            raise ConfigurationError(missing[0], "must be set when APP_ENV=production (generated secrets are dev-only)")
        dev_secrets = load_or_create_dev_secrets(secrets_file or Path(".dev-secrets.json"))
        jwt_secret = jwt_secret or dev_secrets.jwt_secret
        webhook_secret = webhook_secret or dev_secrets.webhook_secret
        generated = missing
    if len(jwt_secret.encode()) < 32:
        raise ConfigurationError("JWT_SECRET", "must be at least 32 bytes (HS256 needs a 256-bit key)")
    if app_env == "production" and len(webhook_secret.encode()) < 32:
        raise ConfigurationError("WEBHOOK_SECRET", "must be at least 32 bytes when APP_ENV=production")

    try:
        rate_limit = RateLimit.parse(env.get("RATE_LIMIT", "600/minute"))
    except ValueError as exc:
        raise ConfigurationError("RATE_LIMIT", str(exc)) from None

    prefix = env.get("REDIS_PREFIX", "push").strip() or "push"
    if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", prefix):
        raise ConfigurationError("REDIS_PREFIX", "use 1-64 letters, digits, '_', '.' or '-'")

    redis_url = _optional(env, "REDIS_URL")
    try:
        redis = parse_redis_url(redis_url) if redis_url else None
    except ValueError as exc:
        raise ConfigurationError("REDIS_URL", str(exc)) from None
    workers = _int(env, "WORKERS", 1, minimum=1, maximum=64)
    if workers > 1 and redis_url is None:
        raise ConfigurationError(
            "WORKERS", "more than one worker needs REDIS_URL (the in-process broker is per process)"
        )

    ws_send_queue = _int(env, "WS_SEND_QUEUE", 1048576, minimum=4096)
    event_max_bytes = _int(env, "EVENT_MAX_BYTES", 65536, minimum=1024, maximum=16 * 1024 * 1024)
    if ws_send_queue <= event_max_bytes:
        # One legal event of the largest size would close every subscriber with 4008.
        raise ConfigurationError("WS_SEND_QUEUE", f"must be larger than EVENT_MAX_BYTES ({event_max_bytes})")

    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigurationError("LOG_LEVEL", "expected DEBUG, INFO, WARNING or ERROR")

    return Settings(
        database_url=_url(env, "DATABASE_URL", ("sqlite", "postgresql", "postgres"), "sqlite:///./push.sqlite3")
        or "sqlite:///./push.sqlite3",
        redis_url=redis_url,
        redis=redis,
        jwt_secret=jwt_secret,
        jwt_public_key=_public_key(env),
        webhook_secret=webhook_secret,
        allowed_origins=_origins(env),
        redis_prefix=prefix,
        app_env=app_env,  # type: ignore[arg-type]  # checked against the Literal above
        host=env.get("HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=_int(env, "PORT", 8000, minimum=0, maximum=65535),
        workers=workers,
        smtp_url=_url(env, "SMTP_URL", ("smtp", "smtps")),
        notify_webhook_url=_url(env, "NOTIFY_WEBHOOK_URL", ("http", "https")),
        notify_webhook_secret=_optional(env, "NOTIFY_WEBHOOK_SECRET"),
        ws_max_frame=_int(env, "WS_MAX_FRAME", 65536, minimum=1024),
        ws_send_queue=ws_send_queue,
        ws_rate=_int(env, "WS_RATE", 100, minimum=1),
        ws_ping_interval=_float(env, "WS_PING_INTERVAL", 25.0, minimum=0.1),
        ws_per_message_deflate=_bool(env, "WS_PER_MESSAGE_DEFLATE", False),
        ws_fast_path=_bool(env, "WS_FAST_PATH", True),
        history_size=_int(env, "HISTORY_SIZE", 1000, minimum=1),
        history_ttl=_int(env, "HISTORY_TTL", 86400, minimum=1),
        event_max_bytes=event_max_bytes,
        rate_limit=rate_limit,
        log_level=log_level,
        generated_secrets=tuple(generated),
    )
