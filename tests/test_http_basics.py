"""The HTTP edge: problem+json everywhere, request ids, CORS, body limits, rate limits, ops endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from app.main import create_app
from app.platform.settings import Settings
from tests.asgi import lifespan_running


def _is_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()


async def test_health_ready_and_schema_need_no_token(client: httpx.AsyncClient) -> None:
    """/health, /ready and /schema answer without a token; /ready reports the database."""
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    schema = await client.get("/schema")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    """404 and 405 from the router are problem+json too."""
    _is_problem(await client.get("/no-such-thing"), 404)
    _is_problem(await client.delete("/health"), 405)


async def test_request_id_is_kept_or_generated(client: httpx.AsyncClient) -> None:
    """A well-formed X-Request-ID is echoed; a malformed or missing one is replaced by a generated id."""
    kept = await client.get("/health", headers={"X-Request-ID": "req-12345678"})
    assert kept.headers["x-request-id"] == "req-12345678"
    replaced = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert replaced.headers["x-request-id"] != "bad id with spaces"
    assert len(replaced.headers["x-request-id"]) == 32  # 20 hex of process prefix + 12 of counter
    missing = await client.get("/nope")
    assert len(missing.headers["x-request-id"]) == 32


async def test_unexpected_error_is_500_without_trace() -> None:
    """An unhandled exception answers 500 problem+json with the request id and no stack trace."""
    from litestar import Litestar, get

    from app.platform.problems import EXCEPTION_HANDLERS
    from app.platform.request_context import stamp_request_id

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    app = Litestar([boom], exception_handlers=EXCEPTION_HANDLERS, before_send=[stamp_request_id])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/boom", headers={"X-Request-ID": "trace-me-12345"})
    _is_problem(response, 500)
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "trace-me-12345" in response.json()["detail"]
    assert response.headers["x-request-id"] == "trace-me-12345"


@pytest.fixture
async def limited_client(make_settings: Callable[..., Settings], database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app allowing 3 requests per minute, with CORS limited to one origin."""
    app = create_app(
        make_settings(DATABASE_URL=database_url, RATE_LIMIT="3/minute", ALLOWED_ORIGINS="https://shop.example.com")
    )
    async with lifespan_running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_rate_limit_answers_429_with_retry_after(
    limited_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    """Past RATE_LIMIT a customer gets 429 with Retry-After; another customer and admins are unaffected."""
    for _ in range(3):
        assert (await limited_client.get("/me", headers=auth("u_rl_a"))).status_code == 200
    refused = await limited_client.get("/me", headers=auth("u_rl_a"))
    _is_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert (await limited_client.get("/me", headers=auth("u_rl_b"))).status_code == 200
    for _ in range(5):
        assert (await limited_client.get("/me", headers=auth("u_rl_admin", "admin"))).status_code == 200


async def test_cors_allows_listed_origin_and_exposes_headers(limited_client: httpx.AsyncClient) -> None:
    """A listed origin gets CORS headers exposing ETag and X-Request-ID; another origin gets none."""
    allowed = await limited_client.get("/health", headers={"Origin": "https://shop.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
    exposed = allowed.headers["access-control-expose-headers"].lower()
    assert "etag" in exposed and "x-request-id" in exposed
    other = await limited_client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers
    preflight = await limited_client.options(
        "/me",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code in (200, 204)


async def test_body_over_one_mebibyte_is_413(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    """A request body over 1 MiB is refused with 413 problem+json before it is parsed."""
    body = b'{"userId": "u", "type": "ACCOUNT_UPDATED", "title": "t", "message": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/notifications", content=body, headers={**auth("svc", "service"), "Content-Type": "application/json"}
    )
    _is_problem(response, 413)
