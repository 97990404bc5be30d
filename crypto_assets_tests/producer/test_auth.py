"""Optional Coinbase API authentication: ES256 JWT per subscribe, verified with the public key."""

from __future__ import annotations

import base64
import json

import pytest

cryptography = pytest.importorskip("cryptography")
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from producer.coinbase import (
    Credentials,
    CredentialsError,
    build_jwt,
    subscribe_messages,
)

KEY_NAME = "organizations/org-1/apiKeys/key-1"


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture(scope="module")
def key_pair():
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return private, pem


def verify(token: str, public_key) -> tuple[dict, dict]:
    header_b64, payload_b64, sig_b64 = token.split(".")
    raw = _b64d(sig_b64)
    assert len(raw) == 64  # JWS ES256: r || s, 32 bytes each
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(_b64d(header_b64)), json.loads(_b64d(payload_b64))


def test_jwt_is_es256_signed_with_the_documented_claims(key_pair):
    private, pem = key_pair
    token = build_jwt(Credentials(KEY_NAME, pem), now=1_700_000_000, nonce="abc123")
    header, payload = verify(token, private.public_key())
    assert header == {"alg": "ES256", "kid": KEY_NAME, "nonce": "abc123", "typ": "JWT"}
    assert payload == {"iss": "cdp", "nbf": 1_700_000_000, "exp": 1_700_000_120, "sub": KEY_NAME}


def test_a_tampered_or_foreign_token_does_not_verify(key_pair):
    private, pem = key_pair
    token = build_jwt(Credentials(KEY_NAME, pem), now=1_700_000_000)
    h, _, s = token.split(".")
    forged = json.dumps({"iss": "cdp", "nbf": 1, "exp": 9_999_999_999, "sub": KEY_NAME}, separators=(",", ":"))
    forged_b64 = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify(f"{h}.{forged_b64}.{s}", private.public_key())
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidSignature):
        verify(token, other.public_key())


def test_each_subscribe_carries_its_own_fresh_token(key_pair):
    private, pem = key_pair
    msgs = [json.loads(m) for m in subscribe_messages(("BTC-USD", "ETH-USD"), Credentials(KEY_NAME, pem))]
    assert [m["channel"] for m in msgs] == ["market_trades", "ticker", "heartbeats"]
    nonces = set()
    for m in msgs:
        header, payload = verify(m["jwt"], private.public_key())
        nonces.add(header["nonce"])
        assert payload["exp"] - payload["nbf"] == 120
    assert len(nonces) == 3


def test_without_credentials_no_token_and_heartbeats_without_products():
    msgs = [json.loads(m) for m in subscribe_messages(("BTC-USD",))]
    assert msgs == [
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "ticker"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]


def test_credentials_from_environment(key_pair):
    _, pem = key_pair
    assert Credentials.from_env({}) is None
    one_line = pem.replace("\n", "\\n")  # as pasted into an env file
    creds = Credentials.from_env({"COINBASE_API_KEY_NAME": KEY_NAME, "COINBASE_API_PRIVATE_KEY": one_line})
    assert creds.key_name == KEY_NAME and "\\n" not in creds.private_key_pem
    with pytest.raises(CredentialsError, match="COINBASE_API_PRIVATE_KEY is not set"):
        Credentials.from_env({"COINBASE_API_KEY_NAME": KEY_NAME})
    with pytest.raises(CredentialsError, match="not a readable PEM"):
        Credentials.from_env({"COINBASE_API_KEY_NAME": KEY_NAME, "COINBASE_API_PRIVATE_KEY": "nonsense"})
    rsa_like = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(CredentialsError, match="P-256"):
        Credentials.from_env({"COINBASE_API_KEY_NAME": KEY_NAME, "COINBASE_API_PRIVATE_KEY": rsa_like})
