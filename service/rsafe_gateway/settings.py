"""Gateway settings, read from `RSAFE_*` environment variables (and an optional `.env` file).

Every field is listed, with its default, in the README's settings table; keep the two in step.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FailMode(StrEnum):
    """What `flagged` says when the model gave no readable verdict."""

    CLOSED = "closed"  # treat as unsafe: block (the safe default for a guard)
    OPEN = "open"  # let it through, but say so in the answer and in metrics


class InputCheck(StrEnum):
    """When the chat proxy judges the last user turn, relative to calling the upstream LLM."""

    SEQUENTIAL = "sequential"  # first the check, then the upstream call: no tokens spent on a no
    PARALLEL = "parallel"  # both at once; nothing is released before the check says safe


class OutputRelease(StrEnum):
    """How the chat proxy releases the upstream's reply to the client."""

    HELD = "held"  # a window reaches the client only once judged safe
    OPTIMISTIC = "optimistic"  # at once; a failed check cuts the rest (what was sent stays sent)


class DecisionLogMode(StrEnum):
    """What happens to an answer whose decision cannot be written to the decision log."""

    BEST_EFFORT = "best_effort"  # answer anyway; the row waits in a bounded buffer (or is dropped)
    REQUIRED = "required"  # no answer without a row: 503 instead


class CacheScope(StrEnum):
    """Whose decisions a cached answer may come from, when API keys are on."""

    KEY = "key"  # each key's own: no key learns what another submitted (the default)
    SHARED = "shared"  # every key's (one tenant with several keys: more hits)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RSAFE_", env_file=".env", extra="ignore")

    # Where the gateway listens.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Host names the gateway answers to (comma-separated, any port). Empty: the loopback names and
    # `host`, so a web page cannot reach a local gateway by DNS rebinding. `*`: any host (behind a
    # load balancer or ingress that routes by host itself).
    allowed_hosts: str = ""
    # Proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For/-Proto are believed;
    # empty: none, the peer address is the client (per-address rate limits). `*`: any peer.
    trusted_proxies: str = ""
    # A request's head (request line + headers) must arrive within `header_read_timeout_seconds`
    # and hold at most `max_header_bytes`; its body must arrive within `body_read_timeout_seconds`
    # (408 and the connection closed).
    header_read_timeout_seconds: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=32_768, ge=1024)
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    log_level: str = "info"
    # Debug only: put the moderated text into the request log line.
    log_content: bool = False
    # Request log lines are written in batches at most this long after the first (0: each at once).
    access_log_flush_seconds: float = Field(default=0.1, ge=0.0, le=10.0)

    # The model server (vLLM's OpenAI-compatible API).
    model_server_url: str = "http://127.0.0.1:8000"
    model_name: str = "rsafe"
    # The guard format the served model was trained with (rsafe_core.formats; README "Model
    # families"): RSafe's own, gpt-oss-safeguard's policy prompt, or Qwen3Guard-Gen's template.
    model_family: Literal["rsafe", "gpt-oss-safeguard", "qwen3guard"] = "rsafe"
    # gpt-oss-safeguard: the reasoning effort when a request names none.
    reasoning_effort: Literal["low", "medium", "high"] = "medium"
    # qwen3guard: the verdict its `Controversial` tier becomes (strict: unsafe; loose: safe).
    controversial_verdict: Literal["unsafe", "safe"] = "unsafe"
    model_server_api_key: str | None = None
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    connect_retries: int = Field(default=2, ge=0, le=10)
    max_connections: int = Field(default=512, ge=1)

    # Decoding. Temperature 0 makes one input give one answer, which is what makes caching sound.
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=1024, ge=16, le=32768)
    reasoning_max_chars: int = Field(default=1500, ge=1, le=20000)
    structured_outputs: bool = True
    # Ask the model to name the violated category ids after an unsafe verdict.
    elicit_categories: bool = True

    # Policies.
    default_policy_id: str = "rsafe-default"
    shipped_policy_dir: Path | None = None  # None: the repository's policies/ folder
    policy_dir: Path | None = None  # the operator's own policies (e.g. a ConfigMap mount)
    # Re-read the policy folders when a file changes (0 disables; SIGHUP always reloads).
    policy_reload_interval_seconds: float = Field(default=5.0, ge=0)

    # Fail mode for undetermined verdicts and backend failures.
    fail_mode: FailMode = FailMode.CLOSED

    # The policy playground page at /playground (static files, uses the public API only).
    playground_enabled: bool = True

    # POST /v1/moderations (OpenAI shape) judges with this policy; its category names are OpenAI's.
    openai_policy_id: str = "openai-moderation"

    # API keys: SHA-256 hex hashes, comma-separated and/or one per line in a file. Never the keys.
    auth_enabled: bool = False
    api_key_hashes: str = ""
    api_key_hashes_file: Path | None = None
    metrics_auth: bool = False  # also require a key on /metrics
    # Tenants: a YAML file of keys (hashes) with tenant, scopes, policies and rate limit, reloaded
    # like the policies. Keys in RSAFE_API_KEY_HASHES belong to the tenant `default`.
    api_keys_file: Path | None = None

    # Rate limit per API key (per client address when auth is off): a token bucket, in Redis so it
    # holds across replicas, in-process when Redis is absent. A token per model call a request
    # needs, at least one per request. 0 disables it.
    rate_limit_per_second: float = Field(default=0.0, ge=0)
    rate_limit_burst: int = Field(default=20, ge=1)
    # Requests in progress at once per API key (per client address when auth is off), per
    # gateway process; beyond it 429. 0: no cap.
    max_concurrent_requests_per_key: int = Field(default=0, ge=0)

    # Protection of the model server: concurrent calls, then a bounded queue, then a fast 503.
    max_concurrent_model_calls: int = Field(default=64, ge=1)
    max_queued_model_calls: int = Field(default=512, ge=0)
    # Circuit breaker: after this many consecutive failures, fail fast for `breaker_reset_seconds`.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=5.0, gt=0)
    # No request takes longer than this, whatever the model server does.
    request_timeout_seconds: float = Field(default=90.0, gt=0)
    # On SIGTERM: /readyz turns 503 at once, new requests are still served for `shutdown_delay`
    # (so load balancers notice), then in-flight requests get up to `shutdown_grace` to finish.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)

    # Input limits.
    max_text_chars: int = Field(default=32_000, ge=1)
    max_messages: int = Field(default=64, ge=1)
    max_policy_chars: int = Field(default=16_000, ge=1)
    max_batch_items: int = Field(default=64, ge=1, le=10_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # The decision log in PostgreSQL (decision_log/); unset: no log, no /v1/decisions.
    database_url: str | None = None
    database_pool_size: int = Field(default=4, ge=1, le=64)
    database_migrate_on_start: bool = True
    decision_log_mode: DecisionLogMode = DecisionLogMode.BEST_EFFORT
    # Decisions waiting to be written (what survives a PostgreSQL outage in best_effort).
    decision_log_buffer: int = Field(default=100_000, ge=1)
    decision_log_batch_size: int = Field(default=500, ge=1, le=10_000)
    # best_effort: rows gather this long before a batch is written (required writes at once).
    decision_log_flush_seconds: float = Field(default=0.2, ge=0, le=10)
    # required mode: how long an answer may wait for its row before it is a 503.
    decision_log_write_timeout_seconds: float = Field(default=5.0, gt=0)
    decision_log_retention_days: int = Field(default=90, ge=1)
    # Off: only the SHA-256 of the moderated content is stored.
    decision_log_store_content: bool = False
    decision_log_content_retention_days: int = Field(default=7, ge=1)
    decision_log_retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # Appeals re-judge with a larger budget (and optionally another served model).
    appeal_max_tokens: int = Field(default=4096, ge=16, le=32768)
    appeal_reasoning_max_chars: int = Field(default=6000, ge=1, le=20000)
    appeal_model_name: str | None = None

    # Cache. An empty redis_url disables it.
    redis_url: str | None = "redis://127.0.0.1:6379/0"
    cache_ttl_seconds: int = Field(default=86_400, ge=1)
    cache_key_prefix: str = "rsafe:"
    cache_max_value_bytes: int = Field(default=65_536, ge=256)
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    # With API keys: `key` keeps each key's cached decisions to itself; `shared` lets every key
    # be answered from any key's (single-tenant installs).
    cache_scope: CacheScope = CacheScope.KEY
    # In-process LRU in front of Redis (hot decisions without a round trip); 0 items disables it.
    local_cache_items: int = Field(default=10_000, ge=0)
    local_cache_ttl_seconds: float = Field(default=60.0, gt=0)
    # A dead cache slows answers but never fails them; set false to stay ready without Redis.
    readiness_requires_cache: bool = True

    # Guarded chat proxy (POST /v1/chat/completions): off unless an upstream LLM is configured.
    upstream_url: str | None = None  # the app's own OpenAI-compatible LLM server
    upstream_api_key: str | None = None
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    # Longest silence from the upstream: before its answer starts, and between two stream chunks.
    upstream_read_timeout_seconds: float = Field(default=60.0, gt=0)
    proxy_input_check: InputCheck = InputCheck.SEQUENTIAL
    proxy_output_release: OutputRelease = OutputRelease.HELD
    proxy_window_chars: int = Field(default=300, ge=20, le=8000)
    proxy_lookback_chars: int = Field(default=600, ge=0, le=16000)
    proxy_input_policy_id: str | None = None  # None: RSAFE_DEFAULT_POLICY_ID
    proxy_output_policy_id: str | None = None  # None: the input check's policy

    @model_validator(mode="after")
    def _fixed_taxonomy_policy(self) -> Settings:
        # Qwen3Guard judges by its own fixed taxonomy only: unless set otherwise, its policy is
        # the default one and the /v1/moderations one (a different choice is refused below).
        if self.model_family == "qwen3guard":
            for name in ("default_policy_id", "openai_policy_id"):
                if name not in self.model_fields_set:
                    setattr(self, name, "qwen3guard")
                elif getattr(self, name) != "qwen3guard":
                    raise ValueError(
                        f"RSAFE_{name.upper()} must be 'qwen3guard' with "
                        "RSAFE_MODEL_FAMILY=qwen3guard (the model has a fixed taxonomy)"
                    )
        return self

    def key_hashes(self) -> frozenset[str]:
        """The configured API-key hashes (lowercase hex), from the setting and the file."""
        raw = self.api_key_hashes.replace(",", "\n")
        if self.api_key_hashes_file is not None:
            raw += "\n" + self.api_key_hashes_file.read_text(encoding="utf-8")
        hashes = {line.strip().lower() for line in raw.splitlines() if line.strip()}
        for value in hashes:
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError("RSAFE_API_KEY_HASHES entries must be SHA-256 hex digests")
        return frozenset(hashes)

    @field_validator(
        "model_server_api_key",
        "shipped_policy_dir",
        "policy_dir",
        "redis_url",
        "api_key_hashes_file",
        "upstream_url",
        "upstream_api_key",
        "proxy_input_policy_id",
        "proxy_output_policy_id",
        "api_keys_file",
        "database_url",
        "appeal_model_name",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        # `RSAFE_REDIS_URL=` disables the cache; likewise an empty path or key is "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("model_server_url", "upstream_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
