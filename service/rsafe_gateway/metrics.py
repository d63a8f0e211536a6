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
HIDDEN_CONTENT = Counter(
    "rsafe_hidden_content",
    "Requests whose judged text (content or inline policy) carried invisible characters, by kind "
    "(tag_characters, variation_selectors, bidi_controls, invisible_characters); they were made "
    "visible for judging.",
    ["kind"],
)  # fmt: skip

CONCURRENCY_LIMITED = Counter(
    "rsafe_concurrency_limited",
    "Requests refused because their key had RSAFE_MAX_CONCURRENT_REQUESTS_PER_KEY in progress.",
)
POLICY_RELOADS = Counter(
    "rsafe_policy_reloads", "Policy folder reloads, by result (ok, rejected).", ["result"]
)
DECISIONS_LOGGED = Counter(
    "rsafe_decision_log_written", "Decisions written to the decision log (PostgreSQL)."
)
DECISIONS_DROPPED = Counter(
    "rsafe_decision_log_dropped",
    "Decisions NOT written to the decision log, by reason (buffer_full, shutdown, failed).",
    ["reason"],
)  # fmt: skip
DECISION_LOG_ERRORS = Counter(
    "rsafe_decision_log_write_errors", "Failed decision-log writes (each batch attempt)."
)
DECISION_LOG_BUFFERED = Gauge(
    "rsafe_decision_log_buffered", "Decisions waiting to be written to the decision log.",
    multiprocess_mode="livesum",
)  # fmt: skip
DECISIONS_OVERTURNED = Counter(
    "rsafe_decisions_overturned",
    "Decisions whose flag an appeal or a human review reversed, by policy id and source.",
    ["policy_id", "source"],
)  # fmt: skip
BUILD_INFO = Gauge(
    "rsafe_build_info", "Always 1; labels say what is running.",
    ["version", "model", "template_version", "model_family"], multiprocess_mode="max",
)  # fmt: skip


# The guarded chat proxy (POST /v1/chat/completions).
PROXY_ADDED_TTFT = Histogram(
    "rsafe_proxy_added_ttft_seconds",
    "Time to first token the proxy adds: the client's wait for the first released token minus "
    "the upstream's own time to its first token.",
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
PROXY_OUTPUT_CHECKS = Histogram(
    "rsafe_proxy_output_checks_per_reply", "Window checks run on one reply.",
    buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256),
)  # fmt: skip
PROXY_CUTS = Counter(
    "rsafe_proxy_cuts", "Replies stopped by a check, by stage (input, output) and reason "
    "(unsafe, fail_closed).", ["stage", "reason"],
)  # fmt: skip
PROXY_MARKS = Counter(
    "rsafe_proxy_fail_open_marks", "Replies released under fail-open although a check gave no "
    "verdict, by stage.", ["stage"],
)  # fmt: skip
PROXY_HELD_BACK_BYTES = Histogram(
    "rsafe_proxy_held_back_bytes",
    "Most reply bytes (UTF-8) held back at once, waiting on a check, per reply.",
    buckets=(0, 64, 256, 1024, 4096, 16384, 65536, 262144),
)  # fmt: skip
PROXY_WITHHELD_BYTES = Counter(
    "rsafe_proxy_withheld_bytes", "Reply bytes (UTF-8) never released because of a cut."
)
PROXY_UPSTREAM_ERRORS = Counter(
    "rsafe_proxy_upstream_errors", "Failed upstream LLM calls, by kind (unavailable, timeout, "
    "5xx, rejected).", ["kind"],
)  # fmt: skip
PROXY_CHECKS_IN_FLIGHT = Gauge(
    "rsafe_proxy_checks_in_flight", "Proxy checks waiting for the guard right now.",
    multiprocess_mode="livesum",
)  # fmt: skip
PROXY_CLIENT_GONE = Counter(
    "rsafe_proxy_client_disconnects", "Proxy requests whose client went away before the end."
)


def render_latest() -> tuple[bytes, str]:
    """The exposition text for `/metrics`, aggregated across workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
