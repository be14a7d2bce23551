"""The operator CLI: ``python -m app --help``."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from app.platform.errors import ConfigurationError
from app.platform.settings import Settings, load_settings
from models.enums import Role

__all__ = ["cli"]


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(f"bad setting {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Marketplace push server: WebSocket/SSE relay, notifications and order tracking.

    Every command reads its settings from the environment (see README).
    """


@cli.command()
def serve() -> None:
    """Start the HTTP and WebSocket server (uvicorn, configured from the settings)."""
    import uvicorn

    from app.platform.logs import configure_logging
    from app.server import uvicorn_options

    settings = _settings()
    configure_logging(settings.log_level, json_lines=settings.is_production)
    # uvicorn.run picks the single-process server or its multi-process supervisor from ``workers``.
    uvicorn.run("app.main:create_served_app", factory=True, **uvicorn_options(settings))


@cli.command()
def migrate() -> None:
    """Apply the database migrations (idempotent)."""
    from app.ops.migrations import apply_migrations

    settings = _settings()
    applied = asyncio.run(apply_migrations(settings.database_url))
    click.echo(f"migrations up to date ({applied} applied now)")


@cli.command()
@click.option("--sub", "user_id", required=True, help="User id (the token's sub claim).")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Seconds until it expires.")
@click.option("--name", default=None)
@click.option("--email", default=None)
def token(user_id: str, role: str, ttl: int, name: str | None, email: str | None) -> None:
    """Mint a development token (HS256 with JWT_SECRET) and print it."""
    from app.platform.auth import mint_token

    try:
        click.echo(mint_token(_settings(), user_id, Role(role), ttl, name=name, email=email))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--orders", type=click.IntRange(min=0), default=10_000, show_default=True)
@click.option("--customers", type=click.IntRange(min=1), default=None, help="Default: orders / 20, at least 10.")
@click.option("--stores", type=click.IntRange(min=1), default=None, help="Default: customers / 50, at least 3.")
@click.option("--notifications", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--seed", "random_seed", type=int, default=1, show_default=True, help="Same seed, same data.")
@click.option("--quiet", is_flag=True, help="No progress bar (make run seeds its demo data this way).")
def seed(
    orders: int, customers: int | None, stores: int | None, notifications: int, random_seed: int, quiet: bool
) -> None:
    """Fill the database with deterministic demo data, with a progress bar."""
    from app.ops.seeding import SeedPlan, run_seed

    plan = SeedPlan.sized(
        orders=orders, customers=customers, stores=stores, notifications=notifications, seed=random_seed
    )
    summary = asyncio.run(run_seed(_settings().database_url, plan, show_progress=not quiet))
    click.echo(summary)


@cli.command()
@click.argument("channel")
@click.argument("event_type", metavar="TYPE")
@click.argument("data", metavar="JSON")
@click.option("--bare", is_flag=True, help="Publish live only, without history (offset null), like redis-cli PUBLISH.")
def publish(channel: str, event_type: str, data: str, bare: bool) -> None:
    """Send one event to CHANNEL as a producer would, e.g. publish order:ord_1 tracking.eta '{"orderId": "ord_1"}'.

    The event is appended to the channel's history (so clients can resume it) and relayed by every
    server process. Needs REDIS_URL: the in-process broker lives inside one server process.
    """
    import msgspec

    from channels import ChannelsError, InvalidChannel, InvalidEvent, Publisher, RedisBroker, validate_channel
    from channels.envelope import check_json, validate_event

    settings = _settings()
    if settings.redis_url is None:
        raise click.ClickException("REDIS_URL is not set: the in-process broker can only be reached inside the server")
    # Everything a server would refuse is refused here, before connecting (SPEC "Producers:").
    try:
        validate_channel(channel)
    except InvalidChannel as exc:
        raise click.BadParameter(str(exc), param_hint="CHANNEL") from None
    try:
        check_json(data.encode())
        payload = validate_event(
            event_type, msgspec.json.encode(msgspec.json.decode(data)), max_bytes=settings.event_max_bytes
        )
    except InvalidEvent as exc:
        if exc.reason == "too_large":
            raise click.ClickException(f"{exc}: set EVENT_MAX_BYTES on every server to allow more") from None
        raise click.BadParameter(str(exc), param_hint="TYPE" if exc.reason == "bad_type" else "JSON") from None

    async def send() -> str:
        broker = RedisBroker(
            settings.redis_url or "",
            settings.redis_prefix,
            settings.history_size,
            settings.history_ttl,
            event_max_bytes=settings.event_max_bytes,
        )
        await broker.start()
        try:
            offset = await Publisher(broker).publish(channel, event_type, payload, history=not bare)
        finally:
            await broker.stop()
        return str(offset) if offset is not None else "null"

    try:
        click.echo(f"published {event_type} to {channel} at offset {asyncio.run(send())}")
    except ChannelsError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--steps", type=click.IntRange(1, 10_000), default=60, show_default=True, help="Location pings to send.")
@click.option(
    "--interval", type=click.FloatRange(0.05, 60), default=1.0, show_default=True, help="Seconds between pings."
)
@click.option("--order", "order_id", default=None, help="Drive this order instead of placing a new one.")
@click.option("--url", "base_url", default=None, help="The server (default: http://HOST:PORT from the settings).")
def demo(steps: int, interval: float, order_id: str | None, base_url: str | None) -> None:
    """Drive a simulated courier along a route so the /demo map moves (needs a running server)."""
    import httpx

    from app.ops.demo_courier import drive_courier

    settings = _settings()
    url = base_url or f"http://{settings.host}:{settings.port}"
    try:
        delivered = asyncio.run(drive_courier(settings, url, steps, interval, order_id))
    except httpx.HTTPError as exc:
        raise click.ClickException(f"{url}: {exc} (is the server running? `make run`)") from None
    click.echo(f"delivered {delivered}")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of ``python -m app``."""
    return cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="python -m app")
