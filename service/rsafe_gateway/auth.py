"""API keys: the gateway stores only SHA-256 hashes and compares them in constant time.

A caller sends `Authorization: Bearer <key>`. The key is hashed and compared with every configured
hash using `hmac.compare_digest` (no early exit), so timing tells nothing about the keys. Keys and
hashes are never logged; a request is identified by `key_id`, the first 12 hex chars of its hash.
Which tenant a key belongs to and what it may do: `tenants.py`.
"""

from __future__ import annotations

from pathlib import Path

from .tenants import Principal, TenantDirectory, hash_key

__all__ = ["ApiKeyAuthenticator", "hash_key"]


class ApiKeyAuthenticator:
    def __init__(self, key_hashes: frozenset[str], keys_file: Path | None = None) -> None:
        self.directory = TenantDirectory(key_hashes, keys_file)

    def admit(self, authorization: str | None) -> Principal:
        """The caller's principal (key id, tenant, scopes, policies), or Unauthorized."""
        return self.directory.authenticate(authorization)

    def authenticate(self, authorization: str | None) -> str:
        """The caller's key id, or Unauthorized."""
        key_id = self.admit(authorization).key_id
        assert key_id is not None  # every principal from a key has one
        return key_id
