"""pytest fixtures for plugin authors (registered through the ``pytest11`` entry point)."""
from __future__ import annotations

import pytest

from collm_bench.testing import tiny_dataset


@pytest.fixture
def collm_tiny_dataset(tmp_path):
    """A tiny prepared dataset (12 users, 20 items, planted preference), loaded."""
    return tiny_dataset(tmp_path / "tiny")
