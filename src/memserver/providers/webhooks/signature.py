"""How a webhook delivery is signed, and how a receiver checks it.

Signature (a memserver extension; Mem0 documents none): header
`X-Mem0-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. The
timestamp is signed with the body, so a receiver that rejects old timestamps (e.g. older than five
minutes) and remembers `X-Memserver-Delivery` ids is safe against replays.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Mem0-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value of one delivery."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: float = 300, now: float | None = None) -> bool:
    """What a receiver does: check the HMAC and that the signed timestamp is recent (replay-safe)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header)
