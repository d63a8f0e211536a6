"""The proxy's two kinds of check, on the moderation service in-process (its cache, single-flight,
limits, circuit breaker and fail mode apply exactly as for POST /v1/moderate).

- input: the last user turn, as a prompt check;
- output: a window of the reply (with its look-back) as the assistant's answer to that user turn,
  as a response check.
Each answers a `CheckOutcome`: pass, cut (unsafe, or no verdict under fail-closed) or mark (no
verdict under fail-open). A failed guard is an outcome, not an error; the one error a check
raises is `DecisionLogUnavailable` (RSAFE_DECISION_LOG_MODE=required and its row could not be
written): a check that is not on record lets nothing pass, whatever the fail mode.
Every check the guard answers is a decision in the log under its `check_id`, with the caller's
tenant and key (`DecisionContext`, route /v1/chat/completions).
The model's reasoning is left out of the client's decision: it may quote the text that was cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rsafe_core.turns import Role, Target
from rsafe_core.verdict import Verdict

from ..decision_log.record import DecisionContext
from ..errors import BackendError, DecisionLogUnavailable, GatewayError, Overloaded
from ..metrics import PROXY_CHECKS_IN_FLIGHT
from ..protocol import Message, ModerationRequest, PolicyRef
from ..service import ModerationService
from ..settings import FailMode
from .protocol import CutReason, GuardDecision, Stage


class Action(StrEnum):
    ALLOW = "allow"
    CUT = "cut"
    MARK = "mark"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    action: Action
    decision: GuardDecision
    reason: CutReason | None = None


def _failure_kind(exc: GatewayError) -> str:
    if isinstance(exc, BackendError):
        return exc.kind  # timeout, unavailable, 5xx
    if isinstance(exc, Overloaded):
        return "overloaded"
    return "rejected"  # e.g. the judged text does not fit the guard's context window


class ReplyChecks:
    def __init__(self, service: ModerationService, fail_mode: FailMode, max_text_chars: int):
        self._service = service
        self._fail_mode = fail_mode
        self._max_text_chars = max_text_chars

    async def input(
        self, user_text: str, policy_id: str, check_id: str, context: DecisionContext
    ) -> CheckOutcome:
        request = ModerationRequest(
            input=user_text, target=Target.PROMPT, policy_id=policy_id, reasoning=False
        )
        return await self._run(request, "input", check_id, context)

    async def output(
        self,
        user_text: str,
        judged: str,
        policy_id: str,
        check_id: str,
        context: DecisionContext,
    ) -> CheckOutcome:
        if not judged.strip():
            # Whitespace cannot break a policy, and the service refuses empty text.
            decision = GuardDecision(
                stage="output", verdict="safe", flagged=False, categories=[], policy=None,
                check_id=check_id,
            )  # fmt: skip
            return CheckOutcome(Action.ALLOW, decision)
        # The user turn is context here; keep its end when both would not fit the text limit.
        budget = max(1, self._max_text_chars - len(judged))
        user_turn = user_text[-budget:] if len(user_text) > budget else user_text
        request = ModerationRequest(
            input=[
                Message(role=Role.USER, content=user_turn),
                Message(role=Role.ASSISTANT, content=judged),
            ],
            target=Target.RESPONSE,
            policy_id=policy_id,
            reasoning=False,
        )
        return await self._run(request, "output", check_id, context)

    async def _run(
        self, request: ModerationRequest, stage: Stage, check_id: str, context: DecisionContext
    ) -> CheckOutcome:
        PROXY_CHECKS_IN_FLIGHT.inc()
        try:
            result = await self._service.moderate(request, check_id, context)
        except DecisionLogUnavailable:
            raise  # not a guard failure: the fail mode must not release an unrecorded check
        except GatewayError as exc:
            return self._failed(stage, check_id, _failure_kind(exc))
        finally:
            PROXY_CHECKS_IN_FLIGHT.dec()
        decision = GuardDecision(
            stage=stage,
            verdict=result.verdict.value,
            flagged=result.flagged,
            categories=result.categories,
            policy=PolicyRef(
                id=result.policy.id, version=result.policy.version, sha256=result.policy.sha256
            ),
            check_id=check_id,
            fail_mode=result.fail_mode,
        )
        if result.verdict is Verdict.UNSAFE:
            return CheckOutcome(Action.CUT, decision, "unsafe")
        if result.verdict is Verdict.UNDETERMINED:
            if result.flagged:
                unreadable = decision.model_copy(update={"failure": "unparseable"})
                return CheckOutcome(Action.CUT, unreadable, "fail_closed")
            return CheckOutcome(Action.MARK, decision)
        return CheckOutcome(Action.ALLOW, decision)

    def _failed(self, stage: Stage, check_id: str, failure: str) -> CheckOutcome:
        """The guard gave no answer at all: the fail mode decides (closed cuts, open marks)."""
        decision = GuardDecision(
            stage=stage, verdict="undetermined", flagged=self._fail_mode is FailMode.CLOSED,
            categories=[], policy=None, check_id=check_id, fail_mode=self._fail_mode.value,
            failure=failure,
        )  # fmt: skip
        if self._fail_mode is FailMode.CLOSED:
            return CheckOutcome(Action.CUT, decision, "fail_closed")
        return CheckOutcome(Action.MARK, decision)
