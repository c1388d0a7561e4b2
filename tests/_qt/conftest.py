"""Fixtures of the Qt tier: a napari viewer under a real (virtual) X server, stores, screenshots."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("qtpy")
pytest.importorskip("napari")

SCREENSHOT_DIR_ENV = "NZE_SCREENSHOT_DIR"


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the recent stores and settings out of the user's configuration.

    The offer to become napari's default reader is answered "no" in advance, so that its
    notification never mixes with the ones a test waits for (one test asks it on purpose).
    """
    config = tmp_path_factory.mktemp("config")
    (config / "settings.json").write_text('{"default_reader": "no"}', encoding="utf-8")
    monkeypatch.setenv("NAPARI_ZARR_EXPLORER_CONFIG_DIR", str(config))


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder the tests write their screenshots to (``$NZE_SCREENSHOT_DIR`` or a temporary one)."""
    env = os.environ.get(SCREENSHOT_DIR_ENV)
    if env:
        path = Path(env)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def sample() -> Path:
    """The built-in sample (generated once into the cache)."""
    from napari_zarr_explorer.testing import sample_path

    return sample_path()


@pytest.fixture
def notifications() -> Iterator[list[str]]:
    """Messages of the napari notifications shown during the test."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def _record(event: object) -> None:
        seen.append(str(getattr(event, "message", event)))

    notification_manager.notification_ready.connect(_record)
    try:
        yield seen
    finally:
        notification_manager.notification_ready.disconnect(_record)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test.

    The socket stays bound but never listens: the port is not handed to anyone else meanwhile
    (a port merely freed could be reused by another server), and a connection to it is
    refused at once.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
