"""HS256Verifier against PyJWT: same verdict, same exception class, on a corpus of hostile tokens.

Every case runs through both ``HS256Verifier.decode`` and the call it replaces::

    jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}, leeway=5)

They must both accept with equal claims or both refuse with the same exception class, except for
the deliberate, stricter differences listed in ``DIFFERENCES`` (asserted explicitly on both sides).
"""

from __future__ import annotations

import random
import time
from typing import Any

import jwt
import pytest
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

from app.platform.jwt_hs256 import HS256Verifier
from tests.conftest import TEST_SECRET
from tests.jwt_tokens import (
    ACCEPT,
    CORPUS,
    DIFFERENCES,
    DIFFERENT_TOKENS,
    SECRET,
    claims,
    outcome,
    pyjwt_decode,
    token,
)


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
    """An HS256 verifier cannot be built on an empty secret: ValueError."""
    with pytest.raises(ValueError, match="empty"):
        HS256Verifier(b"")
