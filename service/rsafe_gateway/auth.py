"""API keys: the gateway stores only SHA-256 hashes and compares them in constant time.

A caller sends `Authorization: Bearer <key>`. The key is hashed and compared with every configured
hash using `hmac.compare_digest` (no early exit), so timing tells nothing about the keys. Keys and
hashes are never logged; a request is identified by `key_id`, the first 12 hex chars of its hash.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import Unauthorized
from .metrics import AUTH_FAILURES


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyAuthenticator:
    def __init__(self, key_hashes: frozenset[str]) -> None:
        self._hashes = tuple(sorted(key_hashes))

    def authenticate(self, authorization: str | None) -> str:
        """The caller's key id, or Unauthorized."""
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            AUTH_FAILURES.inc()
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        presented = hash_key(key.strip()).encode()
        matched = False
        for known in self._hashes:
            matched |= hmac.compare_digest(presented, known.encode())
        if not matched:
            AUTH_FAILURES.inc()
            raise Unauthorized("invalid API key")
        return presented.decode()[:12]
