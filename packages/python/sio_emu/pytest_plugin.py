"""The pytest plugin (entry point ``pytest11``): the ``sio_emu`` fixture, configured by the
``@pytest.mark.sio_emu(...)`` marker, and the session-scoped ``sio_emu_session``, configured by
overriding the ``sio_emu_session_options`` fixture."""

from typing import Any, Dict, Iterator

import pytest

from ._emulator import Emulator, start


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sio_emu(**options): start() options for the sio_emu fixture "
        "(hubs=[...], webhook=..., anonymous=True, access_key=..., config=..., record=..., args=[...])",
    )


@pytest.fixture
def sio_emu(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A started emulator for this test, stopped after it (options from the ``sio_emu`` marker)."""
    options: Dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("sio_emu"))):
        options.update(marker.kwargs)
    with start(**options) as emu:
        yield emu


@pytest.fixture(scope="session")
def sio_emu_session_options() -> Dict[str, Any]:
    """start() options of ``sio_emu_session``; override this fixture in a conftest.py."""
    return {}


@pytest.fixture(scope="session")
def sio_emu_session(sio_emu_session_options: Dict[str, Any]) -> Iterator[Emulator]:
    """One emulator shared by the whole test session."""
    with start(**sio_emu_session_options) as emu:
        yield emu
