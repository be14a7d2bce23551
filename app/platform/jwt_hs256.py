"""A strict, fast verifier of compact HS256 JWTs, for the connect path.

:class:`HS256Verifier` behaves like ::

    jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}, leeway=leeway)

of PyJWT 2.x (2.15 was read rule by rule; tests/test_jwt_hs256.py compares the two on a corpus of
hostile tokens), without PyJWT's per-call overhead: no key re-inspection (PEM, SSH, DER and JWK
probing of the secret: the caller does that once, see :class:`app.platform.auth.TokenVerifier`), no option
merging, one keyed HMAC state copied per token, msgspec instead of two stdlib ``json.loads``.

It raises PyJWT's own exception classes, chosen as PyJWT chooses them (same checks, same order),
so code catching ``jwt.InvalidTokenError`` and its subclasses works unchanged.

Deliberately stricter than PyJWT (both sides are asserted in the differential test):

- JSON is RFC 8259 UTF-8 only (msgspec): no ``NaN``/``Infinity`` literals, no numbers that
  overflow to infinity (``1e400``), no byte order mark, no UTF-16/32 documents, no lone
  surrogates. PyJWT's ``json.loads`` accepts all of these. Refused with ``DecodeError``.
  Duplicate member names are *not* a difference: both keep the last one, which RFC 7515 §4 allows.
- ``exp``, ``nbf`` and ``iat`` must be JSON numbers (RFC 7519 NumericDate). PyJWT runs ``int()``
  on them, so it accepts ``"1700000000"``, ``" 42 "``, ``"1_0"``, ``true`` and ``false``; here
  any other type raises the error PyJWT raises for an unconvertible value (``DecodeError`` for
  ``exp``/``nbf``, ``InvalidIssuedAtError`` for ``iat``). A boolean ``exp`` is therefore a
  ``DecodeError`` here where PyJWT says ``ExpiredSignatureError`` (``int(True) == 1``).
- A token string that cannot be encoded (a lone surrogate) raises ``DecodeError``; PyJWT lets
  ``UnicodeEncodeError`` escape.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import time
from typing import Any

import msgspec
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidJTIError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

__all__ = ["REQUIRED_CLAIMS", "HS256Verifier"]

REQUIRED_CLAIMS = ("exp", "sub")
"""Claims that must be present and not null, checked in this order (PyJWT's ``require``)."""

# Three base64url segments, each with at most two '=' (PyJWT strips up to two and refuses a third).
# The character classes are ASCII: a token with any other character does not match. PyJWT splits
# on the first and the last '.', so a fourth segment lands in the payload and fails its alphabet
# check: "exactly three segments" is the same rule.
_COMPACT = re.compile(rb"([A-Za-z0-9_-]*)(={0,2})\.([A-Za-z0-9_-]*)(={0,2})\.([A-Za-z0-9_-]*)(={0,2})")
_TO_STANDARD_ALPHABET = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")  # by len(data) % 4; 1 is never valid
# PyJWT refuses a segment that does not re-encode to itself, i.e. whose last character carries
# non-zero unused bits. With 2 characters in the last quantum 4 bits are unused (index % 16 == 0),
# with 3 characters 2 bits are (index % 4 == 0).
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}

_decode_json = msgspec.json.Decoder().decode


def _b64url(data: bytes, padding: bytes) -> bytes:
    """Decode one segment as PyJWT's ``_decode_base64url_segment`` does (alphabet checked by the caller)."""
    remainder = len(data) % 4
    if (
        remainder == 1
        # Padding is optional but, when present, must complete the last quantum.
        or (padding and remainder + len(padding) != 4)
        or (remainder and data[-1] not in _CANONICAL_LAST[remainder])
    ):
        raise DecodeError("Invalid base64url segment")
    return binascii.a2b_base64(data.translate(_TO_STANDARD_ALPHABET) + _PADDING[remainder])


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = _decode_json(data)
    except (ValueError, RecursionError) as exc:  # msgspec.DecodeError and UnicodeDecodeError are ValueErrors
        raise DecodeError(f"Invalid {what} string: {exc}") from None
    if not isinstance(value, dict):
        raise DecodeError(f"Invalid {what} string: must be a json object")
    return value


def _numeric_date(value: Any) -> int | None:
    """``int(value)`` as PyJWT compares it, for JSON numbers only (``bool`` is an ``int`` subclass: excluded)."""
    if type(value) is int or type(value) is float:
        return int(value)  # msgspec yields no inf/nan, so this cannot raise
    return None


def _check_header(header: dict[str, Any]) -> None:
    """PyJWS ``_validate_headers`` and its detached-payload (``b64``) rule, in PyJWT's order."""
    if "kid" in header and not isinstance(header["kid"], str):
        raise InvalidTokenError("Key ID header parameter must be a string")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise InvalidTokenError("Invalid 'crit' header: must be a non-empty list")
        for extension in crit:
            if not isinstance(extension, str):
                raise InvalidTokenError("Invalid 'crit' header: values must be strings")
            # "b64" is the only extension PyJWT understands; it must also be present in the header.
            if extension != "b64":
                raise InvalidTokenError(f"Unsupported critical extension: {extension}")
            if extension not in header:
                raise InvalidTokenError(f"Critical extension '{extension}' is missing from headers")
    if header.get("b64", True) is False:
        # RFC 7797 unencoded payload: PyJWT wants "b64" in "crit", then a detached payload we never pass.
        if "crit" not in header:  # when present, it was validated above and lists "b64"
            raise InvalidTokenError("The 'b64' header parameter requires 'b64' to be listed in 'crit'.")
        raise DecodeError("Detached payloads (b64: false) are not supported")


class HS256Verifier:
    """Verifies compact HS256 JWS tokens with one secret and returns their claims.

    Not a general JOSE library: one algorithm, the required claims of :data:`REQUIRED_CLAIMS`, no
    audience (a token carrying a non-empty ``aud`` is refused, as PyJWT does when the caller
    configures none), no issuer check. ``typ`` and unknown header parameters are ignored, as PyJWT
    ignores them.
    """

    __slots__ = ("_keyed", "_leeway")

    def __init__(self, secret: bytes, *, leeway: float = 0) -> None:
        """Key the HMAC once; ``secret`` is used as is (PyJWT's key-shape checks are the caller's).

        Raises:
            ValueError: for an empty secret (PyJWT: ``InvalidKeyError`` on every decode).
        """
        if not secret:
            raise ValueError("HMAC key must not be empty")
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        self._leeway = float(leeway)

    def decode(self, token: str) -> dict[str, Any]:
        """The claims of a valid token.

        Raises:
            jwt.InvalidTokenError: or the subclass PyJWT's ``jwt.decode`` would raise for this token.
        """
        # --- PyJWS._load: every failure here is a DecodeError, whatever its order.
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise DecodeError("Invalid token: not ASCII") from None
        match = _COMPACT.fullmatch(raw)
        if match is None:
            raise DecodeError("Invalid token: not three base64url segments")
        header_data, header_pad, payload_data, payload_pad, signature_data, signature_pad = match.groups()
        header = _json_object(_b64url(header_data, header_pad), "header")
        if header.get("b64", True) is False and (payload_data or payload_pad):
            raise DecodeError("Payload segment must be empty when 'b64' is false.")
        payload = _b64url(payload_data, payload_pad)
        signature = _b64url(signature_data, signature_pad)

        # --- PyJWS.decode_complete: header parameters, then the algorithm, then the signature.
        _check_header(header)
        # PyJWT: a missing, empty or other alg ("none", "hs256", "HS512", "RS256", a list...) is refused.
        if header.get("alg") != "HS256":
            raise InvalidAlgorithmError("The specified alg value is not allowed")
        keyed = self._keyed.copy()
        # The signing input is the token's bytes up to the last '.', padding characters included.
        keyed.update(raw[: match.end(4)])
        if not hmac.compare_digest(signature, keyed.digest()):
            raise InvalidSignatureError("Signature verification failed")

        # --- PyJWT: payload, then claims in _validate_claims' order.
        claims = _json_object(payload, "payload")
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        for claim in REQUIRED_CLAIMS:
            if claims.get(claim) is None:  # an explicit null counts as missing
                raise MissingRequiredClaimError(claim)
        now = time.time()
        leeway = self._leeway
        if "iat" in claims:
            iat = _numeric_date(claims["iat"])
            if iat is None:
                raise InvalidIssuedAtError("Issued At claim (iat) must be an integer.")
            # PyJWT (2.15 here) refuses an iat in the future beyond leeway as immature, not merely malformed.
            if iat > now + leeway:
                raise ImmatureSignatureError("The token is not yet valid (iat)")
        if "nbf" in claims:
            nbf = _numeric_date(claims["nbf"])
            if nbf is None:
                raise DecodeError("Not Before claim (nbf) must be an integer.")
            if nbf > now + leeway:
                raise ImmatureSignatureError("The token is not yet valid (nbf)")
        exp = _numeric_date(claims["exp"])
        if exp is None:
            raise DecodeError("Expiration Time claim (exp) must be an integer.")
        # Truncated to an int first, like PyJWT: exp 100.9 expires with 100.
        if exp <= now - leeway:
            raise ExpiredSignatureError("Signature has expired")
        # No audience is configured: any truthy aud is refused; "", [], null, 0, false pass.
        if claims.get("aud"):
            raise InvalidAudienceError("Invalid audience")
        if not isinstance(claims["sub"], str):
            raise InvalidSubjectError("Subject must be a string")
        if "jti" in claims and not isinstance(claims["jti"], str):
            raise InvalidJTIError("JWT ID must be a string")
