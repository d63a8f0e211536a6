"""Decoding parameters: the sampling settings plus a guard format's answer constraint, hashed.

The fingerprint is part of every cache key: an answer decoded under other parameters is another
answer. It is the SHA-256 of the parameters as compact JSON with sorted keys (the same bytes as
`orjson.dumps(..., option=OPT_SORT_KEYS)`, which the gateway used before, so keys did not change).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int

    def as_parameters(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}


@dataclass(frozen=True, slots=True)
class Decoding:
    parameters: dict[str, Any]  # sent as they are in the /v1/chat/completions body
    fingerprint: str


def build_decoding(
    sampling: Sampling,
    constraint: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> Decoding:
    """`sampling` plus, when given, the constraint (vLLM's `structured_outputs` object) and a
    family's own request fields (`reasoning_effort`); without them the bytes are as before."""
    parameters = sampling.as_parameters()
    if constraint is not None:
        parameters["structured_outputs"] = constraint
    if extra:
        parameters.update(extra)
    encoded = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Decoding(parameters, hashlib.sha256(encoded.encode("utf-8")).hexdigest())
