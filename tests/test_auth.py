"""Identity: token verification, role guards and the user row created from claims."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from app.platform.auth import TokenVerifier, mint_token, require_roles
from app.platform.errors import ConfigurationError, Unauthorized
from app.platform.jwt_hs256 import HS256Verifier
from app.platform.problems import EXCEPTION_HANDLERS
from app.platform.settings import Settings
from models import User
from models.enums import Role
from tests.conftest import TEST_SECRET
from tests.jwt_tokens import (
    SECRET,
    as_json,
    b64,
    claims,
    outcome,
    pyjwt_decode,
    replace_segment,
    rs256_key_confusion,
    token,
    unsigned,
)


def _claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "u_1", "role": "customer", "exp": int(time.time()) + 60, **overrides}


@pytest.fixture
def verifier(make_settings: Callable[..., Settings]) -> TokenVerifier:
    return TokenVerifier(make_settings())


def test_valid_token_gives_identity(verifier: TokenVerifier) -> None:
    """A well-signed HS256 token yields the user id, role and optional claims."""
    identity = verifier.verify(jwt.encode(_claims(name="Ada", email="ada@example.com"), TEST_SECRET, "HS256"))
    assert (identity.user_id, identity.role, identity.name, identity.email) == (
        "u_1",
        Role.CUSTOMER,
        "Ada",
        "ada@example.com",
    )


@pytest.mark.parametrize(
    ("token_factory", "reason"),
    [
        (lambda: jwt.encode(_claims(exp=int(time.time()) - 60), TEST_SECRET, "HS256"), "expired"),
        (lambda: jwt.encode(_claims(), "another-secret-0123456789abcdef-0123456789", "HS256"), "invalid"),
        (lambda: jwt.encode({"sub": "u_1", "role": "customer"}, TEST_SECRET, "HS256"), "exp"),
        (lambda: jwt.encode(_claims(role="wizard"), TEST_SECRET, "HS256"), "role"),
        (lambda: jwt.encode(_claims(sub=42), TEST_SECRET, "HS256"), "sub"),
        (lambda: jwt.encode(_claims(), TEST_SECRET * 2, "HS512"), "algorithm"),
        (lambda: "not.a.token", "invalid"),
    ],
    ids=["expired", "wrong-key", "missing-exp", "unknown-role", "numeric-sub", "other-alg", "garbage"],
)
def test_bad_tokens_are_refused(verifier: TokenVerifier, token_factory: Callable[[], str], reason: str) -> None:
    """Expired, wrongly signed, incomplete or malformed tokens raise Unauthorized with a reason."""
    with pytest.raises(Unauthorized, match=reason):
        verifier.verify(token_factory())


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    """An unsigned token (alg: none) is refused even with valid claims."""

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    unsigned = f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(_claims())}."
    with pytest.raises(Unauthorized):
        verifier.verify(unsigned)


def test_rs256_with_public_key(make_settings: Callable[..., Settings]) -> None:
    """With JWT_PUBLIC_KEY, RS256 tokens are accepted and HS256 ones refused."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(make_settings(JWT_PUBLIC_KEY=public_pem))
    assert verifier.verify(jwt.encode(_claims(), private_key, "RS256")).user_id == "u_1"
    with pytest.raises(Unauthorized, match="algorithm"):
        verifier.verify(jwt.encode(_claims(), TEST_SECRET, "HS256"))


async def test_missing_and_bad_tokens_answer_401_problem(client: httpx.AsyncClient) -> None:
    """A protected endpoint answers 401 problem+json without, or with a bad, bearer token."""
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        response = await client.get("/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 401


async def test_first_sight_creates_then_refreshes_the_user(client: httpx.AsyncClient, settings: Settings) -> None:
    """A token's claims create the user row on first sight and refresh it when they change."""
    user_id = f"u_first_sight_{settings.database_url[:6]}"
    first = mint_token(settings, user_id, Role.CUSTOMER, name="Ada")
    response = await client.get("/me", headers={"Authorization": f"Bearer {first}"})
    assert response.status_code == 200
    assert response.json() == {"userId": user_id, "role": "customer", "name": "Ada", "email": None}
    row = await User.select().where(User.id == user_id).first()
    assert row is not None and row["name"] == "Ada"

    renamed = mint_token(settings, user_id, Role.CUSTOMER, name="Ada L.", email="ada@example.com")
    assert (await client.get("/me", headers={"Authorization": f"Bearer {renamed}"})).status_code == 200
    row = await User.select().where(User.id == user_id).first()
    assert row is not None and (row["name"], row["email"]) == ("Ada L.", "ada@example.com")


async def test_role_guard_answers_403_for_other_roles(make_settings: Callable[..., Settings]) -> None:
    """require_roles admits the listed roles and answers 403 problem+json to the others."""
    from app.platform.auth import Identity

    @get("/admin-only", guards=[require_roles(Role.ADMIN, Role.SERVICE)])
    async def admin_only() -> dict[str, bool]:
        return {"ok": True}

    def set_user(role: Role) -> Any:
        def middleware(app: Any) -> Any:
            async def wrapped(scope: Any, receive: Any, send: Any) -> None:
                scope["user"] = Identity(user_id="u", role=role, expires_at=time.time() + 60)
                await app(scope, receive, send)

            return wrapped

        return middleware

    for role, status in ((Role.ADMIN, 200), (Role.SERVICE, 200), (Role.CUSTOMER, 403), (Role.VENDOR, 403)):
        app = Litestar([admin_only], middleware=[set_user(role)], exception_handlers=EXCEPTION_HANDLERS)
        async with AsyncTestClient(app=app) as client:
            response = await client.get("/admin-only")
        assert response.status_code == status, role
        if status == 403:
            assert response.headers["content-type"].startswith("application/problem+json")


# --- through TokenVerifier: the client-facing reasons are unchanged -----------------------------


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda now: token(claims(now, exp=now - 60)), "token expired"),
        (lambda now: token(claims(now, exp=...)), "token lacks the required claim 'exp'"),
        (lambda now: token(claims(now, sub=...)), "token lacks the required claim 'sub'"),
        (lambda now: token(claims(now, sub=42)), "token 'sub' must be a string user id"),
        (lambda now: token(claims(now), {"alg": "HS512"}, digest=hashlib.sha512), "token algorithm not accepted"),
        (lambda now: unsigned(claims(now), {"alg": "none"}), "token algorithm not accepted (expected HS256)"),
        (rs256_key_confusion, "token algorithm not accepted (expected HS256)"),
        (lambda now: token(claims(now), key=b"x" * 40), "invalid token"),
        (lambda now: replace_segment(token(claims(now)), 1, b64(as_json(claims(now, role="admin")))), "invalid token"),
        (lambda now: token(claims(now, aud="push")), "invalid token"),
        (lambda now: token(claims(now, nbf=now + 60)), "invalid token"),
        (lambda now: "not.a.token", "invalid token"),
    ],
    ids=[
        "expired",
        "missing-exp",
        "missing-sub",
        "numeric-sub",
        "hs512",
        "alg-none",
        "rs256-confusion",
        "wrong-secret",
        "tampered",
        "aud",
        "immature",
        "garbage",
    ],
)
def test_token_verifier_reasons_are_unchanged(
    make_settings: Callable[..., Settings], make: Callable[[int], str], reason: str
) -> None:
    """TokenVerifier on HS256 gives the Unauthorized reason it gave with PyJWT."""
    verifier = TokenVerifier(make_settings())
    jws = make(int(time.time()))
    with pytest.raises(Unauthorized) as ours:
        verifier.verify(jws)
    assert ours.value.detail.startswith(reason)
    # The same reason PyJWT's exception maps to: TokenVerifier's except clauses serve both paths.
    with pytest.raises(jwt.InvalidTokenError) as theirs:
        pyjwt_decode(jws)
    assert type(theirs.value) is outcome(HS256Verifier(SECRET, leeway=5).decode, jws)[0]


def test_token_verifier_accepts_and_remembers(make_settings: Callable[..., Settings]) -> None:
    """A valid token yields the identity; the float exp is kept as the memo's expiry."""
    verifier = TokenVerifier(make_settings())
    now = int(time.time())
    identity = verifier.verify(token(claims(now, exp=now + 600.5, name="Ada", email="ada@example.com")))
    assert (identity.user_id, identity.role.value, identity.name, identity.email, identity.expires_at) == (
        "u_1",
        "customer",
        "Ada",
        "ada@example.com",
        now + 600.5,
    )


def test_token_verifier_refuses_a_key_shaped_secret(make_settings: Callable[..., Settings]) -> None:
    """A PEM public key as JWT_SECRET is refused once, at start-up, as PyJWT refused it per token."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        TokenVerifier(make_settings(JWT_SECRET=pem))
