"""Shared test support: fixtures and helpers for servers the tests run against (see `tests.support.kubeapi`)."""
