import hashlib

import orjson
from rsafe_core.decoding import Sampling, build_decoding
from rsafe_core.formats import guard_format


def test_parameters_are_sampling_plus_the_constraint() -> None:
    decoding = build_decoding(Sampling(0.0, 1.0, 256), {"regex": "a+"})
    assert decoding.parameters == {
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 256,
        "structured_outputs": {"regex": "a+"},
    }
    assert "structured_outputs" not in build_decoding(Sampling(0.0, 1.0, 256), None).parameters


def test_fingerprint_is_the_one_cache_keys_were_made_with() -> None:
    # Same bytes as the gateway's former orjson encoding: the refactor kept every cache key.
    constraint = guard_format("rsafe").constraint(1500, ("S1", "S10", "É2"))
    assert constraint is not None
    decoding = build_decoding(Sampling(0.7, 0.8, 1024), constraint)
    expected = hashlib.sha256(orjson.dumps(decoding.parameters, option=orjson.OPT_SORT_KEYS))
    assert decoding.fingerprint == expected.hexdigest()


def test_fingerprint_changes_with_any_parameter() -> None:
    base = build_decoding(Sampling(0.0, 1.0, 256), {"regex": "a"}).fingerprint
    assert build_decoding(Sampling(0.1, 1.0, 256), {"regex": "a"}).fingerprint != base
    assert build_decoding(Sampling(0.0, 1.0, 257), {"regex": "a"}).fingerprint != base
    assert build_decoding(Sampling(0.0, 1.0, 256), {"regex": "b"}).fingerprint != base
