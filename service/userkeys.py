"""The user-key format, shared by the server core and the client library: "<user>.<signature>",
the signature an HMAC-SHA256 of the user with the server's user secret (base64url, unpadded).

An app backend signs (`sign_user`); the server checks (service/server/security.py: UserKeys).
"""
from __future__ import annotations

import base64
import hashlib
import hmac


def sign_user(secret: bytes, user: str) -> str:
    """The key an app backend hands its client for `user`: "<user>.<signature>"."""
    return f"{user}.{signature_of(secret, user)}"


def signature_of(secret: bytes, user: str) -> str:
    digest = hmac.new(secret, user.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
