"""HS256Verifier against PyJWT: same verdict, same exception class, on a corpus of hostile tokens.

Every case runs through both ``HS256Verifier.decode`` and the call it replaces::

    jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}, leeway=5)

They must both accept with equal claims or both refuse with the same exception class, except for
the deliberate, stricter differences listed in ``DIFFERENCES`` (asserted explicitly on both sides).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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

from app.auth import TokenVerifier
from app.errors import ConfigurationError, Unauthorized
from app.jwt_hs256 import HS256Verifier
from app.settings import Settings
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


@pytest.fixture(scope="module")
def verifier() -> HS256Verifier:
    return HS256Verifier(SECRET, leeway=5)


def test_corpus_means_what_its_names_say() -> None:
    """PyJWT accepts exactly the cases named valid-*; the padded case really carries padding."""
    now = int(time.time())
    accepted = {case for case, make in CORPUS.items() if outcome(pyjwt_decode, make(now))[0] == ACCEPT}
    assert accepted == {case for case in CORPUS if case.startswith("valid-")}
    assert len(CORPUS) - len(accepted) >= 100
    assert [segment.endswith("=") for segment in CORPUS["valid-padded-segments"](now).split(".")] == [True] * 3
    assert set(DIFFERENT_TOKENS) == set(DIFFERENCES)


@pytest.mark.parametrize("case", list(CORPUS))
def test_agrees_with_pyjwt(verifier: HS256Verifier, case: str) -> None:
    """Both accept with equal claims (and equal types), or both refuse with the same exception class."""
    jws = CORPUS[case](int(time.time()))
    expected = outcome(pyjwt_decode, jws)
    actual = outcome(verifier.decode, jws)
    assert actual == expected
    if expected[0] == ACCEPT:
        assert repr(actual[1]) == repr(expected[1])  # 1 == 1.0 == True: the types must match too


def test_corpus_outcomes_are_the_intended_ones(verifier: HS256Verifier) -> None:
    """A sample of the corpus pinned to its outcome, so an agreement on the wrong verdict shows."""
    now = int(time.time())
    pinned: dict[str, Any] = {
        "valid-exp-within-leeway": ACCEPT,
        "valid-padded-segments": ACCEPT,
        "valid-duplicate-alg-last-wins": ACCEPT,
        "alg-none-empty-signature": InvalidAlgorithmError,
        "alg-rs256-key-confusion": InvalidAlgorithmError,
        "alg-duplicate-last-is-none": InvalidAlgorithmError,
        "header-array": DecodeError,
        "kid-int": InvalidTokenError,
        "kid-int-bad-payload-base64": DecodeError,
        "crit-unknown": InvalidTokenError,
        "b64-false-with-crit": DecodeError,
        "b64-false-without-crit": InvalidTokenError,
        "tampered-payload": InvalidSignatureError,
        "non-canonical-signature-bits": DecodeError,
        "bad-signature-and-payload-not-json": InvalidSignatureError,
        "missing-both": MissingRequiredClaimError,
        "exp-expired-just-beyond-leeway": ExpiredSignatureError,
        "nbf-future": ImmatureSignatureError,
        "iat-future": ImmatureSignatureError,
        "iat-word": InvalidIssuedAtError,
        "exp-word": DecodeError,
        "sub-int": InvalidSubjectError,
        "jti-null": InvalidJTIError,
        "aud-list": InvalidAudienceError,
        "expired-and-sub-int": ExpiredSignatureError,
        "missing-exp-and-aud": MissingRequiredClaimError,
        "iat-future-and-expired": ImmatureSignatureError,
        "aud-and-sub-int": InvalidAudienceError,
        "alg-none-and-expired": InvalidAlgorithmError,
        "wrong-secret-and-expired": InvalidSignatureError,
    }
    assert {case: outcome(verifier.decode, CORPUS[case](now))[0] for case in pinned} == pinned
    assert outcome(verifier.decode, CORPUS["missing-both"](now)) == (MissingRequiredClaimError, "exp")
    assert verifier.decode(CORPUS["valid-duplicate-sub-last-wins"](now))["sub"] == "u_2"


@pytest.mark.parametrize("case", list(DIFFERENCES))
def test_deliberate_differences(verifier: HS256Verifier, case: str) -> None:
    """Where HS256Verifier is stricter than PyJWT, both sides of the difference are pinned."""
    pyjwt_outcome, our_outcome = DIFFERENCES[case]
    jws = DIFFERENT_TOKENS[case](int(time.time()))
    assert outcome(pyjwt_decode, jws)[0] is pyjwt_outcome
    assert outcome(verifier.decode, jws)[0] is our_outcome


def test_mutated_tokens_agree(verifier: HS256Verifier) -> None:
    """Single-character edits of a valid token (seeded) get the same verdict from both."""
    rng = random.Random(20240611)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.+/ !é"
    now = int(time.time())
    valid = token(claims(now, name="Ada"), {"alg": "HS256", "kid": "k1"})
    for _ in range(600):
        position = rng.randrange(len(valid) + 1)
        edit = rng.choice(("replace", "insert", "delete"))
        char = rng.choice(alphabet)
        if edit == "replace":
            mutated = valid[:position] + char + valid[position + 1 :]
        elif edit == "insert":
            mutated = valid[:position] + char + valid[position:]
        else:
            mutated = valid[:position] + valid[position + 1 :]
        assert outcome(verifier.decode, mutated) == outcome(pyjwt_decode, mutated), mutated


def test_tokens_minted_by_pyjwt_are_accepted(verifier: HS256Verifier) -> None:
    """jwt.encode's own output (what mint_token signs) decodes to the same claims."""
    now = int(time.time())
    for payload in (claims(now), claims(now, name="Ada", email="a@example.com", iat=now, nbf=now, jti="j")):
        minted = jwt.encode(payload, TEST_SECRET, algorithm="HS256")
        assert verifier.decode(minted) == pyjwt_decode(minted) == payload


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        HS256Verifier(b"")


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
