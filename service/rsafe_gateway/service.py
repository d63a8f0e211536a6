"""The moderation flow: validate → policy → prompt → cache → model → verdict. No HTTP here.

A request goes through three phases, which the fan-out routes (batch, /v1/moderations) run for
all their items at once so that the model calls they need are known, and paid for, before any is
made: `prepare` (validate, resolve the policy, compute the cache key), `look_up` (the cache), and
`finish` (the model call when the cache had nothing, then the answer).

Identical concurrent requests (same cache key) share one model call (`single_flight.py`); the
cache stores the `Decision` (`decision.py`), never the moderated text.

Cache scope: with API keys and RSAFE_CACHE_SCOPE=key (the default), cache keys (and so
single-flight) are per key: one key's `cached: true` or reasoning never tells it what another key
submitted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from rsafe_core.decoding import Decoding, Sampling, build_decoding
from rsafe_core.errors import InvalidInput
from rsafe_core.formats import GuardFormat, ModelOutput, ReasoningEffort
from rsafe_core.neutralise import HiddenKind
from rsafe_core.policy import Policy
from rsafe_core.turns import InputLimits, JudgedInput, Target, Turn, resolve_input
from rsafe_core.verdict import Verdict

from .backend import ModelBackend
from .breaker import CircuitBreaker
from .cache import DecisionCache, cache_key
from .decision import Decision
from .decision_log.record import INTERNAL_CONTEXT, DecisionContext, DecisionSink
from .errors import BackendError, BackendTimeout, GatewayError, InvalidRequest
from .families import check_family_request, format_for
from .limiter import ConcurrencyLimiter
from .metrics import (
    CACHE_LOOKUPS,
    COMPLETION_TOKENS,
    FAIL_MODE_DECISIONS,
    HIDDEN_CONTENT,
    MODEL_DURATION,
    MODEL_ERRORS,
    PROMPT_TOKENS,
    UNDETERMINED,
    VERDICTS,
)
from .policy_store import PolicyStore
from .protocol import ModerationRequest
from .result import ModerationResult, PolicyUsed, TokenUsage
from .settings import CacheScope, FailMode, Settings
from .single_flight import SingleFlight
from .text_turns import LARGE_TEXT_CHARS, LargeTextTurns

_CACHE_HIT = CACHE_LOOKUPS.labels("hit")
_CACHE_MISS = CACHE_LOOKUPS.labels("miss")
_HIDDEN_CONTENT = {kind: HIDDEN_CONTENT.labels(kind.value) for kind in HiddenKind}


@dataclass(frozen=True, slots=True)
class _ModelCall:
    messages: list[dict[str, str]]
    decoding: dict[str, Any]
    category_ids: frozenset[str]


@dataclass(slots=True)
class Job:
    """One moderation request between its phases (see the module's docstring)."""

    request: ModerationRequest
    request_id: str
    started: float
    turns: list[Turn]
    target: Target
    policy: Policy
    category_ids: tuple[str, ...]
    decoding: Decoding
    key: str
    hidden: tuple[str, ...]  # kinds of invisible content made visible (the answer's field)
    large: bool  # its CPU work (rendering) waits for a turn of its own (text_turns.py)
    context: DecisionContext
    cached: Decision | None = None  # set by `look_up` on a hit

    @property
    def needs_model(self) -> bool:
        return self.cached is None


class ModerationService:
    def __init__(
        self,
        settings: Settings,
        backend: ModelBackend,
        cache: DecisionCache,
        policies: PolicyStore,
        decision_log: DecisionSink | None = None,
    ) -> None:
        self._settings = settings
        self._decision_log = decision_log
        self._backend = backend
        self._cache = cache
        self._policies = policies
        self._limits = InputLimits(settings.max_text_chars, settings.max_messages)
        self._flights = SingleFlight[Decision]()
        self._large_texts = LargeTextTurns()
        self._key_prefix = settings.cache_key_prefix
        self._per_key_cache = settings.cache_scope is CacheScope.KEY
        self._limiter = ConcurrencyLimiter(
            settings.max_concurrent_model_calls, settings.max_queued_model_calls
        )
        self.breaker = CircuitBreaker(
            settings.breaker_failure_threshold, settings.breaker_reset_seconds
        )
        self._format: GuardFormat = format_for(settings)
        self._sampling = Sampling(settings.temperature, settings.top_p, settings.max_tokens)
        # One entry per distinct category list (a handful of policies) and reasoning effort:
        # built once, not per request.
        self._decoding_by_categories: dict[
            tuple[tuple[str, ...], ReasoningEffort | None], Decoding
        ] = {}
        self._verdict_counters: dict[tuple[str, str, str], Counter] = {}
        self._policy_refs: dict[tuple[str, str], PolicyUsed] = {}

    def _decoding(
        self, category_ids: tuple[str, ...], effort: ReasoningEffort | None = None
    ) -> Decoding:
        """Sampling parameters plus the answer-format constraint for a policy's category ids,
        and the family's own request fields (a reasoning effort)."""
        decoding = self._decoding_by_categories.get((category_ids, effort))
        if decoding is None:
            constraint = None
            if self._settings.structured_outputs:
                constraint = self._format.constraint(
                    self._settings.reasoning_max_chars, category_ids
                )
            extra = self._format.request_fields(effort)
            decoding = build_decoding(self._sampling, constraint, extra)
            if len(self._decoding_by_categories) < 1024:  # inline policies can't grow it unbounded
                self._decoding_by_categories[(category_ids, effort)] = decoding
        return decoding

    @property
    def policies(self) -> PolicyStore:
        return self._policies

    @property
    def model(self) -> str:
        return self._backend.model

    @property
    def max_batch_items(self) -> int:
        """The most items one batch or /v1/moderations request may hold (RSAFE_MAX_BATCH_ITEMS)."""
        return self._settings.max_batch_items

    @property
    def guard_format(self) -> GuardFormat:
        return self._format

    @property
    def openai_policy_id(self) -> str:
        """The policy for /v1/moderations: the OpenAI one when loaded, else the default."""
        wanted = self._settings.openai_policy_id
        return wanted if self._policies.get(wanted) is not None else self._policies.default_id

    async def moderate(
        self,
        request: ModerationRequest,
        request_id: str,
        context: DecisionContext = INTERNAL_CONTEXT,
    ) -> ModerationResult:
        """Judge one request for the caller in `context` (tenant, key, route)."""
        job = await self.prepare(request, request_id, context)
        await self.look_up(job)
        return await self.finish(job)

    async def prepare(
        self, request: ModerationRequest, request_id: str, context: DecisionContext
    ) -> Job:
        """Validate the request against the limits and compute its cache key (InvalidRequest)."""
        started = time.perf_counter()
        large = _text_chars(request) > LARGE_TEXT_CHARS
        if large:  # its CPU work waits for a turn of its own (see text_turns.py)
            judged, policy = await self._large_texts.run(lambda: self._validate(request, context))
        else:
            judged, policy = self._validate(request, context)
        turns, target = judged.turns, judged.target
        hidden = _hidden_content(judged.hidden | policy.hidden)
        category_ids = policy.category_ids if self._settings.elicit_categories else ()
        decoding = self._decoding(category_ids, request.reasoning_effort)
        key = self._cache_key(
            turns, target, policy, category_ids, decoding, context.principal.key_id
        )
        return Job(
            request,
            request_id,
            started,
            turns,
            target,
            policy,
            category_ids,
            decoding,
            key,
            hidden,
            large,
            context,
        )

    def _validate(
        self, request: ModerationRequest, context: DecisionContext
    ) -> tuple[JudgedInput, Policy]:
        try:
            judged = resolve_input(request.input, request.target, self._limits)
        except InvalidInput as exc:
            raise InvalidRequest.from_input(exc) from None
        policy_id = context.principal.policy_for(request.policy_id, request.policy is not None)
        policy = self._policies.resolve(policy_id, request.policy, self._settings.max_policy_chars)
        check_family_request(self._format, request, policy)
        return judged, policy

    async def look_up(self, job: Job) -> None:
        if job.request.cache:
            cached_value = await self._cache.get(job.key)
            job.cached = Decision.from_cache(cached_value) if cached_value else None
            (_CACHE_HIT if job.cached else _CACHE_MISS).inc()

    @staticmethod
    def model_calls(jobs: list[Job]) -> int:
        """The model calls `finish` will make for these jobs (identical cached ones share one)."""
        shared = {job.key for job in jobs if job.needs_model and job.request.cache}
        return len(shared) + sum(1 for job in jobs if not job.request.cache)

    async def finish(self, job: Job) -> ModerationResult:
        """The answer: from the cache when `look_up` found it, else from the model."""
        decision = job.cached
        if decision is None:
            # Rendering (neutralising every turn) is only needed for the model: not on a hit.
            def render() -> list[dict[str, str]]:
                return self._format.render(
                    job.turns, job.policy, job.target, ask_categories=bool(job.category_ids)
                )

            messages = await self._large_texts.run(render) if job.large else render()
            call = _ModelCall(messages, job.decoding.parameters, frozenset(job.category_ids))
            if job.request.cache:
                decision = await self._flights.run(
                    job.key, lambda: self._decide_and_store(job.key, call, job.request_id)
                )
            else:
                decision = await self._decide(call, job.request_id)
        self._count_verdict(decision.verdict, job.target, job.policy.id)
        result = self._respond(job, decision)
        if self._decision_log is not None:
            # Enqueued only (best_effort); `required` waits for the row or raises a 503.
            written = self._decision_log.submit(
                job.request, result, job.target, decision.reasoning, decision.failure, job.context
            )
            if written is not None:
                await written
        return result

    def _policy_ref(self, policy: Policy) -> PolicyUsed:
        # Immutable and shared by every answer under that policy: built once per policy.
        key = (policy.id, policy.sha256)
        ref = self._policy_refs.get(key)
        if ref is None:
            ref = PolicyUsed(id=policy.id, version=policy.version, sha256=policy.sha256)
            if len(self._policy_refs) < 1024:  # inline policies can't grow it unbounded
                self._policy_refs[key] = ref
        return ref

    def _count_verdict(self, verdict: Verdict, target: Target, policy_id: str) -> None:
        # Labelled children kept per (verdict, target, policy): bounded, as policy ids are the
        # configured ones or `inline`.
        labels = (verdict.value, target.value, policy_id)
        counter = self._verdict_counters.get(labels)
        if counter is None:
            counter = self._verdict_counters[labels] = VERDICTS.labels(*labels)
        counter.inc()

    def _cache_key(
        self,
        turns: list[Turn],
        target: Target,
        policy: Policy,
        category_ids: tuple[str, ...],
        decoding: Decoding,
        key_id: str | None,
    ) -> str:
        """A hash of everything the rendered prompt and the answer depend on, without rendering.

        The prompt is a pure function of (template version, policy text, target, judged turns,
        whether categories are asked for), so hashing those ingredients names the same prompt as
        hashing the prompt itself, at a fraction of the cost on the hit path. Per-key scope puts
        the key id into the Redis key's name (an operator can drop one key's entries by prefix).
        """
        prefix = self._key_prefix
        if key_id is not None and self._per_key_cache:
            prefix = f"{prefix}key-{key_id}:"
        ingredients: tuple[object, ...] = (
            "ingredients-v1",
            self._backend.model,
            self._format.template_version,
            policy.sha256,
            target.value,
            category_ids,
            decoding.fingerprint,
            turns,
        )
        # The family (and how its answer maps to a verdict); none for rsafe: its keys predate it.
        if self._format.key_ingredients:
            ingredients = (*ingredients, self._format.key_ingredients)
        return cache_key(prefix, ingredients)

    async def _decide_and_store(
        self, key: str, call: _ModelCall, request_id: str
    ) -> Decision | GatewayError:
        """The shared call. An error is returned, not raised: every waiter raises its own copy."""
        try:
            decision = await self._decide(call, request_id)
        except GatewayError as exc:
            return exc
        # An undetermined answer is not cached: it may be a transient failure.
        if decision.verdict is not Verdict.UNDETERMINED:
            await self._cache.set(key, decision.to_cache())
        return decision

    async def _decide(self, call: _ModelCall, request_id: str) -> Decision:
        """Ask the model; a backend failure becomes an undetermined decision in open mode."""
        try:
            async with asyncio.timeout(self._settings.request_timeout_seconds):
                return await self._ask_model(call, request_id)
        except TimeoutError as exc:
            return self._backend_failed(BackendTimeout("request deadline exceeded"), exc)
        except BackendError as exc:
            return self._backend_failed(exc, None)

    def _backend_failed(self, exc: BackendError, cause: BaseException | None) -> Decision:
        """A failed model call: undetermined in open mode (marked), the error in closed mode."""
        MODEL_ERRORS.labels(exc.kind).inc()
        if self._settings.fail_mode is FailMode.OPEN:
            return Decision(Verdict.UNDETERMINED, [], None, 0, 0, failure=exc.kind)
        FAIL_MODE_DECISIONS.labels(FailMode.CLOSED.value, exc.kind).inc()
        raise exc from cause

    async def _ask_model(self, call: _ModelCall, request_id: str) -> Decision:
        self.breaker.before_call()
        try:
            async with self._limiter.slot():
                started = time.perf_counter()
                completion = await self._backend.complete(
                    {"messages": call.messages, **call.decoding}, request_id=request_id
                )
        except BackendError:
            self.breaker.record_failure()
            raise
        except BaseException:  # overloaded, cancelled: says nothing about the backend's health
            self.breaker.release_trial()
            raise
        self.breaker.record_success()
        MODEL_DURATION.observe(time.perf_counter() - started)
        PROMPT_TOKENS.inc(completion.prompt_tokens)
        COMPLETION_TOKENS.inc(completion.completion_tokens)
        output = ModelOutput(completion.text, completion.reasoning)
        answer = self._format.parse(output, call.category_ids)
        failure = None
        if answer.verdict is Verdict.UNDETERMINED:
            MODEL_ERRORS.labels("unparseable").inc()
            failure = "unparseable"
        return Decision(
            verdict=answer.verdict,
            categories=answer.categories,
            reasoning=answer.reasoning,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            failure=failure,
        )

    def _respond(self, job: Job, decision: Decision) -> ModerationResult:
        fail_mode: FailMode | None = None
        if decision.verdict is Verdict.UNDETERMINED:
            fail_mode = self._settings.fail_mode
            flagged = fail_mode is FailMode.CLOSED
            UNDETERMINED.inc()
            FAIL_MODE_DECISIONS.labels(fail_mode.value, decision.failure or "unparseable").inc()
        else:
            flagged = decision.verdict is Verdict.UNSAFE
        return ModerationResult(
            id=job.request_id,
            verdict=decision.verdict,
            flagged=flagged,
            categories=decision.categories,
            reasoning=decision.reasoning if job.request.reasoning else None,
            policy=self._policy_ref(job.policy),
            model=self._backend.model,
            cached=job.cached is not None,
            usage=TokenUsage(
                prompt_tokens=decision.prompt_tokens,
                completion_tokens=decision.completion_tokens,
            ),
            latency_ms=round((time.perf_counter() - job.started) * 1000, 3),
            fail_mode=fail_mode.value if fail_mode else None,
            hidden_content=job.hidden,
            model_family=self._format.family,
            template_version=self._format.template_version,
        )


def _text_chars(request: ModerationRequest) -> int:
    """Characters of caller text the request's CPU work is proportional to."""
    data = request.input
    chars = len(data) if isinstance(data, str) else sum(len(message.content) for message in data)
    return chars + len(request.policy or "")


def _hidden_content(kinds: frozenset[HiddenKind]) -> tuple[str, ...]:
    """The answer's `hidden_content`, each kind counted (almost always empty: no work)."""
    if not kinds:
        return ()
    for kind in kinds:
        _HIDDEN_CONTENT[kind].inc()
    return tuple(sorted(kind.value for kind in kinds))
