"""Every Prometheus metric of the gateway, declared once, here.

Labels are bounded: routes are path templates, policy ids are the configured policies or `inline`,
never user text, ids or keys. With several uvicorn workers set `PROMETHEUS_MULTIPROC_DIR` (an empty
folder); `/metrics` then aggregates all workers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# 1 ms … 30 s: cache hits live in the first buckets, reasoning-length model calls in the last.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
)  # fmt: skip

REQUESTS = Counter(
    "rsafe_requests", "HTTP requests answered, by route template and status class.",
    ["route", "status_class"],
)  # fmt: skip
REQUEST_DURATION = Histogram(
    "rsafe_request_duration_seconds", "Time from request to response in the gateway.",
    ["route"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
IN_FLIGHT = Gauge(
    "rsafe_requests_in_flight", "Requests being handled right now.", multiprocess_mode="livesum"
)
MODEL_DURATION = Histogram(
    "rsafe_model_request_duration_seconds", "Time the model server took per completion call.",
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
MODEL_ERRORS = Counter(
    "rsafe_model_errors", "Failed model calls, by kind (timeout, unavailable, 5xx, unparseable).",
    ["kind"],
)  # fmt: skip
VERDICTS = Counter(
    "rsafe_verdicts", "Moderation answers, by verdict, target and policy id (inline for callers').",
    ["verdict", "target", "policy_id"],
)  # fmt: skip
UNDETERMINED = Counter(
    "rsafe_undetermined", "Answers whose verdict could not be read from the model's output."
)
FAIL_MODE_DECISIONS = Counter(
    "rsafe_fail_mode_decisions",
    "Times `flagged` was decided by the fail mode, by mode and reason.",
    ["mode", "reason"],
)  # fmt: skip
CACHE_LOOKUPS = Counter("rsafe_cache_lookups", "Cache reads, by result (hit, miss).", ["result"])
CACHE_ERRORS = Counter(
    "rsafe_cache_errors", "Redis failures (the request went on without the cache), by operation.",
    ["operation"],
)  # fmt: skip
CACHE_LOCAL_HITS = Counter(
    "rsafe_cache_local_hits", "Cache hits answered from the replica's in-process LRU (no Redis)."
)
CACHE_OVERSIZED = Counter(
    "rsafe_cache_oversized", "Decisions not cached because they exceed RSAFE_CACHE_MAX_VALUE_BYTES."
)
SINGLEFLIGHT_JOINS = Counter(
    "rsafe_singleflight_joins", "Requests that waited for an identical in-flight model call."
)
PROMPT_TOKENS = Counter("rsafe_prompt_tokens", "Prompt tokens the model server reported.")
COMPLETION_TOKENS = Counter(
    "rsafe_completion_tokens", "Completion tokens the model server reported."
)
BREAKER_STATE = Gauge(
    "rsafe_circuit_breaker_state",
    "Circuit breaker toward the model server: 0 closed, 1 open, 2 half-open.",
    multiprocess_mode="max",
)
BREAKER_TRANSITIONS = Counter(
    "rsafe_circuit_breaker_transitions", "Circuit breaker state changes, by new state.", ["state"]
)
MODEL_QUEUE = Gauge(
    "rsafe_model_queue_waiting",
    "Model calls waiting for a free slot (RSAFE_MAX_CONCURRENT_MODEL_CALLS).",
    multiprocess_mode="livesum",
)
OVERLOAD_REJECTIONS = Counter(
    "rsafe_overload_rejections", "Requests refused at once because the model-call queue was full."
)
AUTH_FAILURES = Counter("rsafe_auth_failures", "Requests refused for a missing or wrong API key.")
RATE_LIMITED = Counter("rsafe_rate_limited", "Requests refused by the per-key rate limit.")
CONCURRENCY_LIMITED = Counter(
    "rsafe_concurrency_limited",
    "Requests refused because their key had RSAFE_MAX_CONCURRENT_REQUESTS_PER_KEY in progress.",
)
POLICY_RELOADS = Counter(
    "rsafe_policy_reloads", "Policy folder reloads, by result (ok, rejected).", ["result"]
)
BUILD_INFO = Gauge(
    "rsafe_build_info", "Always 1; labels say what is running.",
    ["version", "model", "template_version"], multiprocess_mode="max",
)  # fmt: skip


def render_latest() -> tuple[bytes, str]:
    """The exposition text for `/metrics`, aggregated across workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
