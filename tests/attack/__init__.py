"""Tests that attack the gateway: prompt injection, fuzzing, faults, soak, auth and rate limits.

A package, so that this folder's conftest is imported as `attack.conftest` and never shadows the
`conftest` module (tests/conftest.py) that the tests import shared fixtures and helpers from.
"""
