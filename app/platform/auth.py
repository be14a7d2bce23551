"""Identity: bearer-token verification, the caller's identity, and role guards.

Tokens are JWTs: HS256 signed with ``JWT_SECRET``, or RS256 verified with ``JWT_PUBLIC_KEY``
when another service issues them. ``exp`` and ``sub`` are required; ``alg: none`` and any
algorithm other than the configured one are refused. HS256 tokens are checked by
:class:`app.platform.jwt_hs256.HS256Verifier` (PyJWT's rules without its per-call cost, on every new
connection), RS256 ones by PyJWT.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import HMACAlgorithm

from app.platform.errors import ConfigurationError, Forbidden, Unauthorized
from app.platform.jwt_hs256 import HS256Verifier
from app.platform.settings import Settings
from models.enums import Role

__all__ = ["Identity", "TokenVerifier", "bearer_token", "mint_token", "require_roles"]

_SUBJECT = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_LEEWAY_SECONDS = 5  # clock skew allowed on exp, nbf and iat
_MAX_DISPLAY_CLAIM = 256


class Identity(msgspec.Struct, frozen=True):
    """Who is calling, from a verified token."""

    user_id: str
    role: Role
    expires_at: float
    name: str | None = None
    email: str | None = None
    issued_at: float | None = None
    """The token's ``iat`` (UNIX time), when it has one: what a revocation compares against."""

    @property
    def is_privileged(self) -> bool:
        """Admins and services act on anyone's behalf and are not rate limited."""
        return self.role in (Role.ADMIN, Role.SERVICE)


class TokenVerifier:
    """Verifies bearer tokens with the configured key and algorithm.

    Verified tokens are remembered (bounded) until they expire: a polling client sends the same
    token every few seconds, and an HMAC or RSA check per request is wasted work.
    """

    def __init__(self, settings: Settings, memo_size: int = 10_000) -> None:
        """Parse or check the key once: PyJWT would parse the PEM (or re-inspect the secret) per token.

        Raises:
            ConfigurationError: when ``JWT_SECRET`` looks like a PEM, SSH, DER or JWK key, which
                PyJWT refuses as an HMAC secret (every token would be refused otherwise).
        """
        self._verified: dict[str, Identity] = {}
        self._memo_size = memo_size
        self._public_key: Any = None
        self._hs256: HS256Verifier | None = None
        if settings.jwt_public_key:
            self._public_key = serialization.load_pem_public_key(settings.jwt_public_key.encode())
            self._algorithm = "RS256"
        else:
            try:
                secret = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(settings.jwt_secret.encode())
            except jwt.InvalidKeyError:
                raise ConfigurationError(
                    "JWT_SECRET", "looks like a public or private key; set JWT_PUBLIC_KEY for RS256 tokens"
                ) from None
            self._hs256 = HS256Verifier(secret, leeway=_LEEWAY_SECONDS)
            self._algorithm = "HS256"

    def verify(self, token: str) -> Identity:
        """Decode and check a token.

        Raises:
            Unauthorized: with a reason a client developer can act on.
        """
        known = self._verified.get(token)
        if known is not None and known.expires_at > time.time():
            return known
        identity = self._decode(token)
        if len(self._verified) >= self._memo_size:
            self._verified.clear()
        self._verified[token] = identity
        return identity

    def _decode(self, token: str) -> Identity:
        try:
            claims: dict[str, Any]
            if self._hs256 is not None:
                # Raises PyJWT's exception classes, so the clauses below serve both paths.
                claims = self._hs256.decode(token)
            else:
                claims = jwt.decode(
                    token,
                    self._public_key,
                    algorithms=[self._algorithm],
                    options={"require": ["exp", "sub"]},
                    leeway=_LEEWAY_SECONDS,
                )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the required claim {exc.claim!r}") from None
        except jwt.exceptions.InvalidSubjectError:
            raise Unauthorized("token 'sub' must be a string user id") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthorized(f"token algorithm not accepted (expected {self._algorithm})") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None
        return _identity_from_claims(claims)


def _identity_from_claims(claims: dict[str, Any]) -> Identity:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise Unauthorized("token 'sub' must be a string id of 1-64 letters, digits or _.@-")
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise Unauthorized("token 'role' must be customer, vendor, admin or service") from None
    return Identity(
        user_id=subject,
        role=role,
        expires_at=float(claims["exp"]),
        name=_display_claim(claims, "name"),
        email=_display_claim(claims, "email"),
        issued_at=float(claims["iat"]) if isinstance(claims.get("iat"), int | float) else None,
    )


def _display_claim(claims: dict[str, Any], claim: str) -> str | None:
    """An optional text claim kept on the user row: one that cannot be stored makes the token bad input.

    Raises:
        Unauthorized: the claim holds U+0000 (PostgreSQL cannot store it) or is over 256 characters.
    """
    value = claims.get(claim)
    if not isinstance(value, str):
        return None
    if "\x00" in value or len(value) > _MAX_DISPLAY_CLAIM:
        raise Unauthorized(
            f"token claim {claim!r} must be text of at most {_MAX_DISPLAY_CLAIM} characters, without NUL"
        )
    return value


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header.

    Raises:
        Unauthorized: when the header is missing or not a bearer token.
    """
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


def mint_token(
    settings: Settings,
    user_id: str,
    role: Role,
    ttl_seconds: int = 3600,
    name: str | None = None,
    email: str | None = None,
) -> str:
    """Sign an HS256 token with ``JWT_SECRET`` (dev tooling, the demo login and tests).

    Raises:
        ValueError: when the server verifies RS256 tokens, which it cannot sign.
    """
    if settings.jwt_public_key:
        raise ValueError("the server verifies RS256 tokens (JWT_PUBLIC_KEY); mint them with the issuer's private key")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "role": role.value, "iat": now, "exp": now + ttl_seconds}
    if name:
        claims["name"] = name
    if email:
        claims["email"] = email
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def require_roles(*roles: Role) -> Callable[[Any, Any], Awaitable[None]]:
    """A Litestar guard admitting only the given roles (403 for the others)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(role.value for role in allowed))

    # A coroutine on purpose: Litestar runs a plain function guard in a worker thread, a thread
    # hop on every request (about a sixth of the CPU of a courier ping).
    async def guard(connection: Any, _handler: Any) -> None:
        identity = connection.scope.get("user")
        if not isinstance(identity, Identity):
            raise Unauthorized("missing Authorization: Bearer <token>")
        if identity.role not in allowed:
            raise Forbidden(f"this endpoint is for the roles: {names}")

    return guard
