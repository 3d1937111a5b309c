"""TURN credentials of coturn's REST API (static-auth-secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

TURN_CREDENTIAL_LIFETIME = 86400


def turn_credentials(secret: str, peer_id: str, now: float | None = None) -> dict[str, str]:
    """username "<expiry>:<peer id>" and its HMAC-SHA1 credential, valid for a day."""
    expiry = int(time.time() if now is None else now) + TURN_CREDENTIAL_LIFETIME
    username = f"{expiry}:{peer_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode()}


def ice_servers(turn_server: str | None, secret: str | None, peer_id: str) -> list[dict[str, Any]] | None:
    """What roomReady carries: the one TURN server with fresh credentials, or None."""
    if not turn_server or not secret:
        return None
    return [{"urls": [turn_server], **turn_credentials(secret, peer_id)}]
