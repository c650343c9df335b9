"""Root of the test suite: shared paths. Fixtures for servers live in tests/support and per-area conftest files."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's top folder."""
    return REPO_ROOT


pytest_plugins = ["tests.support.kubeapi", "tests.support.controlplane"]
