"""Tenants: who an API key belongs to, what it may do, which policies it may use.

The keys file (RSAFE_API_KEYS_FILE, YAML) maps each key's SHA-256 hash to a tenant:

    keys:
      - sha256: 9f86d081...            # hash of the key; the key itself is never stored
        tenant: acme
        scopes: [moderate, decisions:read]
        default_policy: kids-education  # optional: the policy when a request names none
        allowed_policies: [kids-education, rsafe-default]  # optional: all when absent;
                                        # `inline` allows caller-written policies
        rate_limit: {per_second: 20, burst: 40}  # optional: RSAFE_RATE_LIMIT_* when absent

It is reloaded like the policies (SIGHUP, or a changed file within the reload interval); an invalid
edit is rejected and the previous keys stay in force. Keys in RSAFE_API_KEY_HASHES(_FILE) are the
tenant `default` with scopes `moderate` and `decisions:read` (they read the `default` tenant's
decisions); `admin` exists only in the keys file, so upgrading a gateway grants no one new powers.

A presented key is hashed and compared with EVERY known hash (`hmac.compare_digest`, no early exit).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import Forbidden, Unauthorized
from .file_watch import FileWatch
from .metrics import AUTH_FAILURES

logger = logging.getLogger("rsafe_gateway.tenants")

Scope = Literal["moderate", "decisions:read", "admin"]
ALL_SCOPES: frozenset[str] = frozenset({"moderate", "decisions:read", "admin"})
DEFAULT_TENANT = "default"
LEGACY_SCOPES: frozenset[str] = frozenset({"moderate", "decisions:read"})
INLINE_POLICY = "inline"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class RateLimit:
    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as admission found it."""

    key_id: str | None  # 12 hex chars of the key's hash; None when auth is off
    tenant: str
    scopes: frozenset[str]
    default_policy: str | None = None
    allowed_policies: frozenset[str] | None = None  # None: every policy
    rate_limit: RateLimit | None = None  # None: the gateway-wide limit

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def require(self, scope: str) -> None:
        if scope not in self.scopes and not self.is_admin:
            raise Forbidden(f"this API key lacks the {scope!r} scope")

    def policy_for(self, policy_id: str | None, inline: bool) -> str | None:
        """The policy id a request of this caller uses (its default when it names none)."""
        wanted = policy_id if policy_id is not None or inline else self.default_policy
        if self.allowed_policies is not None:
            name = INLINE_POLICY if inline else wanted
            if name is not None and name not in self.allowed_policies:
                param = "policy" if inline else "policy_id"
                raise Forbidden(f"this API key may not use policy {name!r}", param=param)
        return wanted


# With auth off the gateway is open (a local, single-tenant set-up): the caller may do anything.
ANONYMOUS = Principal(key_id=None, tenant=DEFAULT_TENANT, scopes=ALL_SCOPES)


class _RateLimitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    tenant: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    scopes: list[Scope] = Field(min_length=1)
    default_policy: str | None = None
    allowed_policies: list[str] | None = None
    rate_limit: _RateLimitEntry | None = None

    @model_validator(mode="after")
    def _default_is_allowed(self) -> _KeyEntry:
        allowed, default = self.allowed_policies, self.default_policy
        if allowed is not None and default is not None and default not in allowed:
            raise ValueError("default_policy must be one of allowed_policies")
        return self

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("must be a SHA-256 hex digest of the key (never the key itself)")
        return value


class _KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[_KeyEntry]


class KeysFileError(ValueError):
    """The keys file is unreadable or invalid (start-up stops; a reload keeps the old keys)."""


def _principal(entry: _KeyEntry) -> Principal:
    limit = entry.rate_limit
    return Principal(
        key_id=entry.sha256[:12],
        tenant=entry.tenant,
        scopes=frozenset(entry.scopes),
        default_policy=entry.default_policy,
        allowed_policies=(
            frozenset(entry.allowed_policies) if entry.allowed_policies is not None else None
        ),
        rate_limit=RateLimit(limit.per_second, limit.burst) if limit is not None else None,
    )


def load_keys_file(path: Path) -> dict[str, Principal]:
    """Hash → principal, from a keys file; KeysFileError saying what is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _KeysFile.model_validate(document)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KeysFileError(f"{path}: {exc}") from None
    except ValidationError as exc:
        raise KeysFileError(f"{path}: {exc}") from None
    principals: dict[str, Principal] = {}
    for entry in parsed.keys:
        if entry.sha256 in principals:
            raise KeysFileError(f"{path}: key hash {entry.sha256[:12]}… is listed twice")
        principals[entry.sha256] = _principal(entry)
    return principals


class TenantDirectory:
    """Every accepted key hash and its principal; `reload()` swaps the keys file's atomically."""

    def __init__(self, legacy_hashes: frozenset[str], keys_file: Path | None) -> None:
        self._legacy = {
            digest: Principal(key_id=digest[:12], tenant=DEFAULT_TENANT, scopes=LEGACY_SCOPES)
            for digest in legacy_hashes
        }
        self._keys_file = keys_file
        self._lock = threading.Lock()
        self.files = FileWatch(self._watched_files, self._reload)
        self._entries = self._load()

    def _watched_files(self) -> list[Path]:
        return [self._keys_file] if self._keys_file is not None else []

    def _load(self) -> tuple[tuple[bytes, Principal], ...]:
        merged = dict(self._legacy)
        if self._keys_file is not None:
            merged.update(load_keys_file(self._keys_file))  # the file's entry wins for a hash
        return tuple((digest.encode(), principal) for digest, principal in sorted(merged.items()))

    def reload(self) -> bool:
        return self.files.reload()

    def reload_if_changed(self) -> bool:
        return self.files.reload_if_changed()

    def _reload(self) -> bool:
        try:
            entries = self._load()
        except KeysFileError as exc:
            logger.error("keys file reload rejected, keeping the previous keys: %s", exc)
            return False
        with self._lock:
            self._entries = entries
        logger.info("keys file reloaded: %d keys", len(entries))
        return True

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller's principal, or Unauthorized."""
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            AUTH_FAILURES.inc()
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        presented = hash_key(key.strip()).encode()
        found: Principal | None = None
        for known, principal in self._entries:  # every entry, whatever matched: constant time
            if hmac.compare_digest(presented, known):
                found = principal
        if found is None:
            AUTH_FAILURES.inc()
            raise Unauthorized("invalid API key")
        return found


def principal_of(admitted: Principal | None, auth_enabled: bool) -> Principal:
    """The principal admission found for the request; ANONYMOUS when auth is off."""
    if admitted is not None:
        return admitted
    if auth_enabled:  # admission did not run: refuse rather than serve as anonymous
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    return ANONYMOUS
