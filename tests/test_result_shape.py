"""The service's answer (a dataclass orjson writes directly) has exactly the documented shape."""

import orjson
import pytest
from rsafe_core.verdict import Verdict

from rsafe_gateway.protocol import ModerationResponse, PolicyRef, Usage
from rsafe_gateway.result import ModerationResult, PolicyUsed, TokenUsage

POLICY = PolicyUsed(id="rsafe-default", version="1", sha256="ab" * 32)


@pytest.mark.parametrize(
    "result",
    [
        ModerationResult(
            "mod-1", Verdict.SAFE, False, [], "fine", POLICY, "rsafe", True, TokenUsage(9, 3), 0.2
        ),
        ModerationResult(
            "mod-2", Verdict.UNSAFE, True, ["U1", "U3"], None, POLICY, "rsafe", False,
            TokenUsage(120, 40), 153.25,
        ),
        ModerationResult(
            "mod-3", Verdict.UNDETERMINED, True, [], None, POLICY, "rsafe", False,
            TokenUsage(0, 0), 5001.0, fail_mode="closed",
        ),
        ModerationResult(
            "mod-4", Verdict.UNSAFE, True, [], None, POLICY, "rsafe", False, TokenUsage(9, 3), 1.0,
            hidden_content=("bidi_controls", "tag_characters"),
        ),
    ],
)  # fmt: skip
def test_serialises_to_what_the_contract_documents(result: ModerationResult) -> None:
    wire = orjson.dumps(result)
    document = orjson.loads(wire)
    assert set(document) == set(ModerationResponse.model_fields)
    assert set(document["policy"]) == set(PolicyRef.model_fields)
    assert set(document["usage"]) == set(Usage.model_fields)
    # The documented model accepts it and writes the very same JSON back.
    assert ModerationResponse.model_validate_json(wire).model_dump(mode="json") == document
    assert document["verdict"] == result.verdict.value
