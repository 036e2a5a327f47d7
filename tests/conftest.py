"""Shared fixtures: the real data in ../shared/data and a private HOME for Blender."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMOFLAME_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $EMOFLAME_SHARED_DATA); the tests that use it fail loudly without it."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA}; set EMOFLAME_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory):
    """Blender writes preferences under HOME: keep it away from the real one."""
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield home
    if old is not None:
        os.environ["HOME"] = old
