"""Tests of the policy playground page (static checks, and a headless Chromium against the real stack).

A package, so that this folder's conftest is imported as `playground.conftest` and never shadows the
`conftest` module that tests/test_*.py import from.
"""
