"""The policies a gateway serves: the shipped folder plus an optional operator folder."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from rsafe_core.errors import InvalidInput
from rsafe_core.policy import Policy, PolicyFileError, inline_policy, load_policy_dirs
from rsafe_core.turns import check_text, judged_text

from .errors import InvalidRequest
from .file_watch import FileWatch
from .metrics import POLICY_RELOADS

logger = logging.getLogger("rsafe_gateway.policies")

SHIPPED_POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"


class PolicyStore:
    """Named policies, loaded and validated up front; `reload()` swaps them atomically."""

    def __init__(self, directories: list[Path], default_policy_id: str) -> None:
        self._directories = directories
        self._default_id = default_policy_id
        self._lock = threading.Lock()
        self.files = FileWatch(self._policy_files, self._reload)
        self._policies = self._load()

    def _load(self) -> dict[str, Policy]:
        policies = load_policy_dirs(self._directories)
        if self._default_id not in policies:
            raise PolicyFileError(
                f"default policy {self._default_id!r} (RSAFE_DEFAULT_POLICY_ID) is not in "
                f"{', '.join(str(d) for d in self._directories)}"
            )
        return policies

    def _policy_files(self) -> Iterator[Path]:
        for directory in self._directories:
            yield from sorted(directory.glob("*.md"))

    def reload(self) -> bool:
        """Re-read the folders. On an invalid file keep serving the old set and log why."""
        return self.files.reload()

    def reload_if_changed(self) -> bool:
        return self.files.reload_if_changed()

    def _reload(self) -> bool:
        try:
            policies = self._load()
        except PolicyFileError as exc:
            POLICY_RELOADS.labels("rejected").inc()
            logger.error("policy reload rejected, keeping the previous policies: %s", exc)
            return False
        with self._lock:
            self._policies = policies
        POLICY_RELOADS.labels("ok").inc()
        logger.info("policies reloaded: %s", ", ".join(sorted(policies)))
        return True

    @property
    def default_id(self) -> str:
        return self._default_id

    def all(self) -> list[Policy]:
        return sorted(self._policies.values(), key=lambda policy: policy.id)

    def get(self, policy_id: str) -> Policy | None:
        return self._policies.get(policy_id)

    def resolve(self, policy_id: str | None, inline_text: str | None, max_chars: int) -> Policy:
        """The policy a request asks for, or InvalidRequest naming the field."""
        if inline_text is not None and policy_id is not None:
            raise InvalidRequest("give either 'policy' or 'policy_id', not both", param="policy")
        if inline_text is not None:
            try:
                check_text(inline_text, "policy", max_chars)
                judged = judged_text(inline_text, "policy", max_chars)
            except InvalidInput as exc:
                raise InvalidRequest.from_input(exc) from None
            return inline_policy(judged.text, judged.hidden)
        wanted = policy_id if policy_id is not None else self._default_id
        policy = self._policies.get(wanted)
        if policy is None:
            raise InvalidRequest(f"unknown policy_id {wanted!r}", param="policy_id")
        return policy
