"""Fixtures of the browser end-to-end test (the hub itself is in hub_session.py)."""

from hub_session import hub  # noqa: F401 (a pytest fixture, found by name)
