"""Signing shared by the bridge's edges: the salts of its signed links (a link of one kind
never opens another), and the Standard Webhooks signature (senders' and ours)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

INCIDENT_SALT = "bridge.incidents"
STORM_SALT = "bridge.storms"


def standard_signature(secret: str, message_id: str, stamp: int | str, body: bytes) -> str:
    """The Standard Webhooks v1 signature (base64 HMAC-SHA256 of ``id.timestamp.body``);
    a ``whsec_`` secret is the base64 of the key, any other secret is the key itself."""
    key_text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        key = secret.encode()
    signed = f"{message_id}.{stamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, stamp: int, body: bytes) -> dict[str, str]:
    """The headers of a JSON post the bridge signs (Standard Webhooks): ``webhook-id``,
    ``webhook-timestamp`` and ``webhook-signature``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "proprofs-bridge",
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + standard_signature(secret, message_id, stamp, body),
    }
