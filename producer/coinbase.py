"""Coinbase Advanced Trade WebSocket specifics: endpoint, subscribe messages, optional JWT auth.

One `subscribe` message per channel, sent right after connecting (Coinbase closes a socket
that has not subscribed within 5 s): `market_trades` and `ticker` for the products, and
`heartbeats` (no products) so a quiet market still shows the connection is alive.
Authentication is optional for these public channels. When `COINBASE_API_KEY_NAME` and
`COINBASE_API_PRIVATE_KEY` are set, each subscribe message carries a fresh ES256 JWT
(valid 2 minutes): header `kid` = key name and a random `nonce`; payload `iss` "cdp",
`nbf`, `exp` = nbf + 120, `sub` = key name.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field

from crypto_assets.contracts.settings import ProducerSettings

DATA_CHANNELS = ("market_trades", "ticker")
HEARTBEAT_CHANNEL = "heartbeats"
JWT_LIFETIME_S = 120
KEY_NAME_VAR = ProducerSettings.env_name("coinbase_api_key_name")
PRIVATE_KEY_VAR = ProducerSettings.env_name("coinbase_api_private_key")


class CredentialsError(ValueError):
    """The API credentials in the environment cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Credentials:
    key_name: str
    private_key_pem: str = field(repr=False)  # a secret: never in a repr or a log line

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Credentials | None:
        """The credentials of the environment's producer settings (see `from_settings`)."""
        return cls.from_settings(ProducerSettings.from_env(environ))

    @classmethod
    def from_settings(cls, options: ProducerSettings) -> Credentials | None:
        """Both values set -> credentials; neither -> None (unauthenticated); one -> error."""
        name = options.coinbase_api_key_name.strip()
        key = options.coinbase_api_private_key.get_secret_value()
        if not name and not key.strip():
            return None
        if not name or not key.strip():
            missing = KEY_NAME_VAR if not name else PRIVATE_KEY_VAR
            raise CredentialsError(
                f"{missing} is not set but its partner is: set both {KEY_NAME_VAR} and {PRIVATE_KEY_VAR}, "
                f"or neither to use the public channels unauthenticated"
            )
        # Keys pasted into one-line env files often carry literal "\n".
        creds = cls(name, key.replace("\\n", "\n").strip() + "\n")
        creds.signing_key()  # fail now, with a clear line, not on the first subscribe
        return creds

    def signing_key(self):
        try:
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.serialization import (
                load_pem_private_key,
            )
        except ImportError:
            raise CredentialsError(
                f"{KEY_NAME_VAR} is set but the 'cryptography' package needed to sign the JWT is missing: "
                f"pip install cryptography, or unset the variables to connect unauthenticated"
            ) from None
        try:
            key = load_pem_private_key(self.private_key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise CredentialsError(
                f"{PRIVATE_KEY_VAR} is not a readable PEM private key ({exc}); expected an EC P-256 key "
                f"(-----BEGIN EC PRIVATE KEY-----)"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise CredentialsError(f"{PRIVATE_KEY_VAR} must be an EC P-256 (secp256r1) key for ES256")
        return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def build_jwt(credentials: Credentials, now: float | None = None, nonce: str | None = None) -> str:
    """An ES256 JWT for the WebSocket API, valid for JWT_LIFETIME_S from `now`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    issued = int(time.time() if now is None else now)
    header = {"alg": "ES256", "kid": credentials.key_name, "nonce": nonce or secrets.token_hex(16), "typ": "JWT"}
    payload = {"iss": "cdp", "nbf": issued, "exp": issued + JWT_LIFETIME_S, "sub": credentials.key_name}
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(payload, separators=(",", ":")).encode())
    )
    der = credentials.signing_key().sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    # JWS wants the raw 64-byte r || s, not DER.
    return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def subscribe_messages(products: tuple[str, ...] | list[str], credentials: Credentials | None = None) -> list[str]:
    """The subscribe messages for one connection, each with its own fresh JWT when authenticated."""
    messages = []
    for channel in (*DATA_CHANNELS, HEARTBEAT_CHANNEL):
        msg: dict = {"type": "subscribe"}
        if channel != HEARTBEAT_CHANNEL:
            msg["product_ids"] = list(products)
        msg["channel"] = channel
        if credentials is not None:
            msg["jwt"] = build_jwt(credentials)
        messages.append(json.dumps(msg, separators=(",", ":")))
    return messages


def wanted_subscriptions(products) -> dict[str, list[str]]:
    """What the `subscriptions` acknowledgements should list once every subscribe took effect."""
    return {"market_trades": list(products), "ticker": list(products), HEARTBEAT_CHANNEL: []}
