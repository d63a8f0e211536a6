"""The moderation flow: validate → policy → prompt → cache → model → verdict. No HTTP here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .backend import ModelBackend
from .cache import DecisionCache, cache_key
from .conversation import InputLimits, resolve_turns
from .policy import Policy
from .policy_store import PolicyStore
from .prompt import TEMPLATE_VERSION, answer_regex, render_messages
from .protocol import ModerationRequest, ModerationResponse, PolicyRef, Usage
from .settings import FailMode, Settings
from .verdict import Verdict, parse_answer


@dataclass(frozen=True, slots=True)
class Decision:
    """What the model decided; this (not the moderated text) is what the cache stores."""

    verdict: Verdict
    categories: list[str]
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int

    def to_cache(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "categories": self.categories,
            "reasoning": self.reasoning,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    @classmethod
    def from_cache(cls, value: dict[str, Any]) -> Decision | None:
        try:
            return cls(
                verdict=Verdict(value["verdict"]),
                categories=[str(item) for item in value["categories"]],
                reasoning=value["reasoning"],
                prompt_tokens=int(value["prompt_tokens"]),
                completion_tokens=int(value["completion_tokens"]),
            )
        except (KeyError, ValueError, TypeError):
            return None


class ModerationService:
    def __init__(
        self,
        settings: Settings,
        backend: ModelBackend,
        cache: DecisionCache,
        policies: PolicyStore,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._cache = cache
        self._policies = policies
        self._limits = InputLimits(settings.max_text_chars, settings.max_messages)
        # Built once: decoding parameters are part of every request body and every cache key.
        self._decoding: dict[str, Any] = {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_tokens,
        }
        if settings.structured_outputs:
            self._decoding["structured_outputs"] = {
                "regex": answer_regex(settings.reasoning_max_chars)
            }

    @property
    def policies(self) -> PolicyStore:
        return self._policies

    async def moderate(self, request: ModerationRequest, request_id: str) -> ModerationResponse:
        started = time.perf_counter()
        turns, target = resolve_turns(request.input, request.target, self._limits)
        policy = self._policies.resolve(
            request.policy_id, request.policy, self._settings.max_policy_chars
        )
        messages = render_messages(turns, policy.body, target)
        key = cache_key(
            self._settings.cache_key_prefix,
            {
                "model": self._backend.model,
                "template": TEMPLATE_VERSION,
                "policy": policy.sha256,
                "target": target.value,
                "messages": messages,
                "decoding": self._decoding,
            },
        )

        decision: Decision | None = None
        if request.cache:
            cached_value = await self._cache.get(key)
            decision = Decision.from_cache(cached_value) if cached_value else None
        cached = decision is not None
        if decision is None:
            decision = await self._ask_model(messages, policy, request_id)
            # An undetermined answer is not cached: it may be a transient failure.
            if request.cache and decision.verdict is not Verdict.UNDETERMINED:
                await self._cache.set(key, decision.to_cache())

        return self._respond(request, request_id, decision, policy, cached, started)

    async def _ask_model(
        self, messages: list[dict[str, str]], policy: Policy, request_id: str
    ) -> Decision:
        completion = await self._backend.complete(
            {"messages": messages, **self._decoding}, request_id=request_id
        )
        answer = parse_answer(completion.text)
        return Decision(
            verdict=answer.verdict,
            categories=[],
            reasoning=answer.reasoning,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )

    def _respond(
        self,
        request: ModerationRequest,
        request_id: str,
        decision: Decision,
        policy: Policy,
        cached: bool,
        started: float,
    ) -> ModerationResponse:
        fail_mode: FailMode | None = None
        if decision.verdict is Verdict.UNDETERMINED:
            fail_mode = self._settings.fail_mode
            flagged = fail_mode is FailMode.CLOSED
        else:
            flagged = decision.verdict is Verdict.UNSAFE
        return ModerationResponse(
            id=request_id,
            verdict=decision.verdict,
            flagged=flagged,
            categories=decision.categories,
            reasoning=decision.reasoning if request.reasoning else None,
            policy=PolicyRef(id=policy.id, version=policy.version, sha256=policy.sha256),
            model=self._backend.model,
            cached=cached,
            usage=Usage(
                prompt_tokens=decision.prompt_tokens,
                completion_tokens=decision.completion_tokens,
            ),
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            fail_mode=fail_mode.value if fail_mode else None,
        )
