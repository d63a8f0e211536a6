"""Deployment checks (Helm chart, compose, images, monitoring files).

A package, so that this folder's conftest is imported as `deploy.conftest` and never shadows the
`conftest` module that tests/test_*.py import from.
"""
