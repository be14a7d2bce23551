"""Hand-built HS256 tokens for the differential test of ``app.platform.jwt_hs256`` against PyJWT.

``CORPUS`` maps a case name to a token factory (given the current time in whole seconds); names
starting ``valid-`` are the tokens PyJWT accepts. ``DIFFERENCES`` lists the cases where our verifier
is deliberately stricter, with both outcomes; ``DIFFERENT_TOKENS`` builds those tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    InvalidIssuedAtError,
    MissingRequiredClaimError,
)

from tests.conftest import TEST_SECRET

SECRET = TEST_SECRET.encode()
HS256 = {"alg": "HS256", "typ": "JWT"}
ACCEPT = "accept"

# --- building tokens by hand ------------------------------------------------------------------


def b64(data: bytes, *, pad: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(data).decode()
    return encoded if pad else encoded.rstrip("=")


def as_json(value: Any) -> bytes:
    """Raw bytes are used as is (hand-written JSON, or not JSON at all); anything else is dumped."""
    return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()


def sign(signing_input: str, key: bytes = SECRET, digest: Any = hashlib.sha256) -> str:
    return b64(hmac.new(key, signing_input.encode(), digest).digest())


def token(
    payload: Any,
    header: Any = HS256,
    *,
    key: bytes = SECRET,
    digest: Any = hashlib.sha256,
    pad: bool = False,
) -> str:
    """A compact JWS whose HMAC is computed over exactly the segments written."""
    signing_input = f"{b64(as_json(header), pad=pad)}.{b64(as_json(payload), pad=pad)}"
    signature = b64(base64.urlsafe_b64decode(sign(signing_input, key, digest) + "=="), pad=pad)
    return f"{signing_input}.{signature}"


def unsigned(payload: Any, header: Any, signature: str = "") -> str:
    return f"{b64(as_json(header))}.{b64(as_json(payload))}.{signature}"


def claims(now: int, **overrides: Any) -> dict[str, Any]:
    """A typical token's claims; an override of ``...`` removes the claim."""
    base: dict[str, Any] = {"sub": "u_1", "role": "customer", "exp": now + 600}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not ...}


def payload_bytes(now: int, fragment: str) -> bytes:
    """Hand-written JSON: a typical payload with extra raw members (for what json.dumps cannot write)."""
    return f'{{"sub":"u_1","role":"customer","exp":{now + 600},{fragment}}}'.encode()


def replace_segment(jws: str, index: int, value: str) -> str:
    parts = jws.split(".")
    parts[index] = value
    return ".".join(parts)


def flip_last(segment: str) -> str:
    return segment[:-1] + ("A" if segment[-1] != "A" else "B")


def rs256_key_confusion(now: int) -> str:
    """An RS256 header with an HMAC over the server's secret: the classic algorithm-confusion forgery."""
    return token(claims(now), {"alg": "RS256", "typ": "JWT"})


def bad_signature_bits(now: int) -> str:
    """A 43-character signature whose last character has non-zero unused bits (non-canonical base64)."""
    head, _, signature = token(claims(now)).rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last of 43 characters carries 2 unused bits: its index is a multiple of 4, the next one is not.
    return f"{head}.{signature[:-1]}{alphabet[alphabet.index(signature[-1]) + 1]}"


# name -> token factory (given the current time in whole seconds)
CORPUS: dict[str, Callable[[int], str]] = {
    # accepted
    "valid-typical": lambda now: token(claims(now)),
    "valid-name-email-role": lambda now: token(claims(now, name="Ada", email="ada@example.com", role="admin")),
    "valid-float-exp": lambda now: token(claims(now, exp=now + 600.75)),
    "valid-exp-within-leeway": lambda now: token(claims(now, exp=now - 2)),
    "valid-nbf-past": lambda now: token(claims(now, nbf=now - 60)),
    "valid-nbf-within-leeway": lambda now: token(claims(now, nbf=now + 2)),
    "valid-iat-past": lambda now: token(claims(now, iat=now - 60)),
    "valid-iat-float": lambda now: token(claims(now, iat=now - 0.5)),
    "valid-iat-within-leeway": lambda now: token(claims(now, iat=now + 2)),
    "valid-kid-typ": lambda now: token(claims(now), {"alg": "HS256", "kid": "k1", "typ": "at+jwt"}),
    "valid-no-typ": lambda now: token(claims(now), {"alg": "HS256"}),
    "valid-unknown-header-params": lambda now: token(claims(now), {"alg": "HS256", "jku": "https://x", "x": [1]}),
    "valid-escaped-alg": lambda now: token(claims(now), b'{"alg":"HS\\u0032\\u00356"}'),
    "valid-crit-b64-true": lambda now: token(claims(now), {"alg": "HS256", "crit": ["b64"], "b64": True}),
    "valid-padded-segments": lambda now: token(claims(now, name="Ada"), {"alg": "HS256", "t": "xxx"}, pad=True),
    "valid-aud-empty-string": lambda now: token(claims(now, aud="")),
    "valid-aud-empty-list": lambda now: token(claims(now, aud=[])),
    "valid-aud-null": lambda now: token(claims(now, aud=None)),
    "valid-aud-zero": lambda now: token(claims(now, aud=0)),
    "valid-jti-string": lambda now: token(claims(now, jti="abc")),
    "valid-iss-anything": lambda now: token(claims(now, iss=42)),
    "valid-unicode-claims": lambda now: token(claims(now, name="Zoë 😀 ☃", email="z@é.example")),
    "valid-nested-claims": lambda now: token(claims(now, extra={"a": [1, 2.5, None, True, {"b": "c"}]})),
    "valid-big-int-exp": lambda now: token(claims(now, exp=10**30)),
    "valid-whitespace-json": lambda now: token(
        f' {{ "sub" : "u_1" ,\n"role":"customer",\t"exp" : {now + 600} }} '.encode(), b' {"alg" : "HS256"} '
    ),
    "valid-duplicate-sub-last-wins": lambda now: token(payload_bytes(now, '"sub":"u_2"')),
    "valid-duplicate-alg-last-wins": lambda now: token(claims(now), b'{"alg":"none","alg":"HS256"}'),
    "valid-escaped-nul": lambda now: token(payload_bytes(now, '"name":"a\\u0000b"')),
    # the algorithm
    "alg-none-empty-signature": lambda now: unsigned(claims(now), {"alg": "none", "typ": "JWT"}),
    "alg-none-with-signature": lambda now: token(claims(now), {"alg": "none", "typ": "JWT"}),
    "alg-lowercase": lambda now: token(claims(now), {"alg": "hs256"}),
    "alg-hs512": lambda now: token(claims(now), {"alg": "HS512"}, digest=hashlib.sha512),
    "alg-hs384": lambda now: token(claims(now), {"alg": "HS384"}, digest=hashlib.sha384),
    "alg-rs256-key-confusion": rs256_key_confusion,
    "alg-missing": lambda now: token(claims(now), {"typ": "JWT"}),
    "alg-null": lambda now: token(claims(now), {"alg": None}),
    "alg-empty": lambda now: token(claims(now), {"alg": ""}),
    "alg-list": lambda now: token(claims(now), {"alg": ["HS256"]}),
    "alg-padded-with-space": lambda now: token(claims(now), {"alg": "HS256 "}),
    "alg-duplicate-last-is-none": lambda now: token(claims(now), b'{"alg":"HS256","alg":"none"}'),
    # the header
    "header-array": lambda now: token(claims(now), ["HS256"]),
    "header-string": lambda now: token(claims(now), "HS256"),
    "header-number": lambda now: token(claims(now), 256),
    "header-null": lambda now: token(claims(now), None),
    "header-not-json": lambda now: token(claims(now), b"alg=HS256"),
    "header-empty": lambda now: token(claims(now), b""),
    "header-trailing-garbage": lambda now: token(claims(now), b'{"alg":"HS256"}x'),
    "header-invalid-utf8": lambda now: token(claims(now), b'{"alg":"HS256","x":"\xff"}'),
    "kid-int": lambda now: token(claims(now), {"alg": "HS256", "kid": 7}),
    "kid-int-alg-none": lambda now: unsigned(claims(now), {"alg": "none", "kid": 7}),
    "kid-int-bad-payload-base64": lambda now: replace_segment(token(claims(now), {"alg": "HS256", "kid": 7}), 1, "!"),
    "crit-unknown": lambda now: token(claims(now), {"alg": "HS256", "crit": ["exp"], "exp": 1}),
    "crit-empty": lambda now: token(claims(now), {"alg": "HS256", "crit": []}),
    "crit-string": lambda now: token(claims(now), {"alg": "HS256", "crit": "b64", "b64": True}),
    "crit-not-string-item": lambda now: token(claims(now), {"alg": "HS256", "crit": [1]}),
    "crit-b64-absent": lambda now: token(claims(now), {"alg": "HS256", "crit": ["b64"]}),
    "b64-false-with-crit": lambda now: f"{b64(as_json({'alg': 'HS256', 'b64': False, 'crit': ['b64']}))}..AAAA",
    "b64-false-without-crit": lambda now: f"{b64(as_json({'alg': 'HS256', 'b64': False}))}..AAAA",
    "b64-false-with-payload": lambda now: token(claims(now), {"alg": "HS256", "b64": False, "crit": ["b64"]}),
    # the payload
    "payload-array": lambda now: token([claims(now)]),
    "payload-string": lambda now: token("u_1"),
    "payload-number": lambda now: token(42),
    "payload-null": lambda now: token(None),
    "payload-not-json": lambda now: token(b"sub=u_1"),
    "payload-trailing-garbage": lambda now: token(as_json(claims(now)) + b"}"),
    "payload-two-objects": lambda now: token(as_json(claims(now)) * 2),
    "payload-invalid-utf8": lambda now: token(payload_bytes(now, '"name":"@@"').replace(b"@@", b"\xc0\xaf")),
    "payload-deeply-nested": lambda now: token(payload_bytes(now, '"deep":' + "[" * 5000 + "]" * 5000)),
    "payload-infinite-exp": lambda now: token(b'{"sub":"u_1","exp":Infinity}'),
    "payload-exp-overflows": lambda now: token(b'{"sub":"u_1","exp":1e400}'),
    "payload-huge-int": lambda now: token(payload_bytes(now, '"n":' + "9" * 5000)),
    # signatures and secrets
    "tampered-payload": lambda now: replace_segment(token(claims(now)), 1, b64(as_json(claims(now, role="admin")))),
    "tampered-signature": lambda now: replace_segment(token(claims(now)), 2, sign("x.y")),
    "truncated-signature": lambda now: token(claims(now))[:-4],
    "empty-signature": lambda now: unsigned(claims(now), HS256),
    "wrong-secret": lambda now: token(claims(now), key=b"another-secret-0123456789abcdef-0123456789"),
    "secret-prefix": lambda now: token(claims(now), key=SECRET[:-1]),
    "signature-of-other-hash": lambda now: token(claims(now), digest=hashlib.sha512),
    "non-canonical-signature-bits": bad_signature_bits,
    "bad-signature-and-payload-not-json": lambda now: unsigned(b"not json", HS256, sign("a.b")),
    # segments and characters
    "one-segment": lambda now: b64(as_json(HS256)),
    "two-segments": lambda now: token(claims(now)).rpartition(".")[0],
    "four-segments": lambda now: token(claims(now)) + ".",
    "four-segments-signed": lambda now: (lambda t: f"{t}.{sign(t)}")(token(claims(now)).rpartition(".")[0] + ".e30"),
    "five-segments": lambda now: token(claims(now)) + ".a.b",
    "empty-string": lambda now: "",
    "only-dots": lambda now: "..",
    "plus-slash-alphabet": lambda now: token(claims(now)).replace("-", "+").replace("_", "/") + "+/",
    "bang-in-signature": lambda now: token(claims(now))[:-1] + "!",
    "padding-three": lambda now: token(claims(now)) + "===",
    "padding-on-full-quantum": lambda now: replace_segment(token(claims(now)), 0, b64(as_json(HS256)) + "=="),
    "padding-in-middle": lambda now: replace_segment(token(claims(now)), 0, "ey=J" + b64(as_json(HS256))),
    "padding-only": lambda now: replace_segment(token(claims(now)), 2, "=="),
    "length-mod-4-is-1": lambda now: replace_segment(token(claims(now)), 2, "AAAAA"),
    "leading-space": lambda now: " " + token(claims(now)),
    "trailing-newline": lambda now: token(claims(now)) + "\n",
    "inner-space": lambda now: token(claims(now)).replace(".", " .", 1),
    "non-ascii-letter": lambda now: token(claims(now))[:-1] + "é",
    "non-ascii-digit": lambda now: "\u0663" + token(claims(now)),  # ARABIC-INDIC DIGIT THREE
    "fullwidth-dot": lambda now: token(claims(now)).replace(".", "\uff0e", 1),
    # claims
    "missing-exp": lambda now: token(claims(now, exp=...)),
    "missing-sub": lambda now: token(claims(now, sub=...)),
    "missing-both": lambda now: token({"role": "customer"}),
    "exp-null": lambda now: token(claims(now, exp=None)),
    "sub-null": lambda now: token(claims(now, sub=None)),
    "exp-word": lambda now: token(claims(now, exp="tomorrow")),
    "exp-list": lambda now: token(claims(now, exp=[now + 600])),
    "exp-object": lambda now: token(claims(now, exp={"at": now + 600})),
    "exp-expired": lambda now: token(claims(now, exp=now - 60)),
    "exp-expired-just-beyond-leeway": lambda now: token(claims(now, exp=now - 7)),
    "exp-zero": lambda now: token(claims(now, exp=0)),
    "exp-negative": lambda now: token(claims(now, exp=-1)),
    "nbf-future": lambda now: token(claims(now, nbf=now + 60)),
    "nbf-word": lambda now: token(claims(now, nbf="later")),
    "nbf-null": lambda now: token(claims(now, nbf=None)),
    "iat-future": lambda now: token(claims(now, iat=now + 60)),
    "iat-word": lambda now: token(claims(now, iat="then")),
    "iat-null": lambda now: token(claims(now, iat=None)),
    "iat-list": lambda now: token(claims(now, iat=[1])),
    "sub-int": lambda now: token(claims(now, sub=42)),
    "sub-list": lambda now: token(claims(now, sub=["u_1"])),
    "jti-int": lambda now: token(claims(now, jti=7)),
    "jti-null": lambda now: token(claims(now, jti=None)),
    "aud-string": lambda now: token(claims(now, aud="push")),
    "aud-list": lambda now: token(claims(now, aud=["push"])),
    "aud-true": lambda now: token(claims(now, aud=True)),
    "aud-object": lambda now: token(claims(now, aud={"a": 1})),
    "duplicate-exp-last-expired": lambda now: token(payload_bytes(now, f'"exp":{now - 60}')),
    # several faults: the first one PyJWT checks decides the exception
    "expired-and-sub-int": lambda now: token(claims(now, exp=now - 60, sub=42)),
    "missing-exp-and-aud": lambda now: token(claims(now, exp=..., aud="x")),
    "iat-future-and-expired": lambda now: token(claims(now, iat=now + 60, exp=now - 60)),
    "nbf-future-and-expired": lambda now: token(claims(now, nbf=now + 60, exp=now - 60)),
    "aud-and-sub-int": lambda now: token(claims(now, aud="x", sub=42)),
    "sub-int-and-jti-int": lambda now: token(claims(now, sub=42, jti=7)),
    "alg-none-and-expired": lambda now: unsigned(claims(now, exp=now - 60), {"alg": "none"}),
    "wrong-secret-and-expired": lambda now: token(claims(now, exp=now - 60), key=b"x" * 40),
}

# Deliberate differences: case -> (PyJWT's outcome, HS256Verifier's outcome). Every one is stricter.
DIFFERENCES: dict[str, tuple[str | type[Exception], str | type[Exception]]] = {
    # NumericDate claims must be JSON numbers; PyJWT runs int() on anything.
    "exp-numeric-string": (ACCEPT, DecodeError),
    "exp-string-with-underscore": (ACCEPT, DecodeError),
    "exp-true": (ExpiredSignatureError, DecodeError),  # int(True) == 1, long expired for PyJWT
    "nbf-true": (ACCEPT, DecodeError),
    "nbf-numeric-string": (ACCEPT, DecodeError),
    "iat-true": (ACCEPT, InvalidIssuedAtError),
    "iat-numeric-string": (ACCEPT, InvalidIssuedAtError),
    # JSON beyond RFC 8259 UTF-8, which the stdlib json module accepts.
    "payload-nan-claim": (ACCEPT, DecodeError),
    "payload-infinity-claim": (ACCEPT, DecodeError),
    "payload-overflowing-number-claim": (ACCEPT, DecodeError),
    "payload-lone-surrogate-escape": (ACCEPT, DecodeError),
    "payload-lone-surrogate-bytes": (ACCEPT, DecodeError),
    "header-utf8-bom": (ACCEPT, DecodeError),
    "payload-utf16": (ACCEPT, DecodeError),
    # A token string that is not encodable at all: PyJWT lets UnicodeEncodeError escape (a 500).
    "token-lone-surrogate": (UnicodeEncodeError, DecodeError),
}

DIFFERENT_TOKENS: dict[str, Callable[[int], str]] = {
    "exp-numeric-string": lambda now: token(claims(now, exp=str(now + 600))),
    "exp-string-with-underscore": lambda now: token(claims(now, exp=f"{now + 600:_}")),
    "exp-true": lambda now: token(claims(now, exp=True)),
    "nbf-true": lambda now: token(claims(now, nbf=True)),
    "nbf-numeric-string": lambda now: token(claims(now, nbf=str(now - 60))),
    "iat-true": lambda now: token(claims(now, iat=True)),
    "iat-numeric-string": lambda now: token(claims(now, iat=f" {now - 60} ")),
    "payload-nan-claim": lambda now: token(payload_bytes(now, '"score":NaN')),
    "payload-infinity-claim": lambda now: token(payload_bytes(now, '"score":-Infinity')),
    "payload-overflowing-number-claim": lambda now: token(payload_bytes(now, '"score":1e400')),
    "payload-lone-surrogate-escape": lambda now: token(payload_bytes(now, '"name":"\\ud800"')),
    "payload-lone-surrogate-bytes": lambda now: token(
        payload_bytes(now, '"name":"@@"').replace(b"@@", b"\xed\xa0\x80")
    ),
    "header-utf8-bom": lambda now: token(claims(now), b'\xef\xbb\xbf{"alg":"HS256"}'),
    "payload-utf16": lambda now: token(json.dumps(claims(now)).encode("utf-16")),
    "token-lone-surrogate": lambda now: token(claims(now)) + "\ud800",
}


def pyjwt_decode(jws: str) -> dict[str, Any]:
    """The call TokenVerifier made before HS256Verifier."""
    return jwt.decode(jws, SECRET, algorithms=["HS256"], options={"require": ["exp", "sub"]}, leeway=5)


def outcome(decode: Callable[[str], dict[str, Any]], jws: str) -> tuple[str | type[Exception], Any]:
    """(ACCEPT, claims) or (exception class, the claim a MissingRequiredClaimError names)."""
    try:
        return ACCEPT, decode(jws)
    except MissingRequiredClaimError as exc:
        return MissingRequiredClaimError, exc.claim
    except Exception as exc:
        return type(exc), None
