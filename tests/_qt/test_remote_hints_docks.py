"""What the docks say when a remote store cannot be read: what a napari user can do about it.

The core's hints name ``--storage-options`` (command line) and ``storage_options=`` (Python); a
napari user has neither. The docks name what they have instead: a password in the URL, the
credential environment variables napari is started with, ``NZE_REMOTE_TIMEOUT``. And a URL
that failed to open stays in the open box as typed, so that fixing a typo does not mean typing
the password again, while the Recent list, the status line and the notifications never show it.
"""

from __future__ import annotations

import base64
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from qtpy.QtCore import Qt

from napari_zarr_explorer._qt.explorer import ExplorerWidget
from napari_zarr_explorer.testing import write_ome_image
from servers import AWS_VARS

PLUGIN = "napari-zarr-explorer"
SECRET = "s3cr3t-Pa55"


def _options_named(texts: list[str]) -> list[str]:
    return [t for t in texts if re.search(r"storage[-_]options", t)]


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast: one retry after a short backoff, a short timeout."""
    monkeypatch.setenv("NZE_REMOTE_RETRIES", "1")
    monkeypatch.setenv("NZE_REMOTE_BACKOFF", "0.01")
    monkeypatch.setenv("NZE_REMOTE_TIMEOUT", "0.5")


@pytest.fixture
def forget_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start with no password remembered, as a new napari session does."""
    from napari_zarr_explorer.store import locate

    monkeypatch.setattr(locate, "_USERINFO", {})


@pytest.fixture
def private(http_server):
    """The loopback server, answering only requests with ann's password (basic auth)."""
    write_ome_image(http_server.root / "img.ome.zarr", shape=(2, 32, 32), axes="cyx", levels=2)
    token = base64.b64encode(f"ann:{SECRET}".encode()).decode()
    http_server.require_header("Authorization", f"Basic {token}")
    return http_server


@pytest.fixture
def silent() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server that takes connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _open(qtbot, explorer: ExplorerWidget, url: str) -> None:
    explorer.location_edit.setFocus()
    explorer.location_edit.selectAll()
    explorer.location_edit.setText(url)
    qtbot.mouseClick(explorer.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=120000)


def _failed_open(qtbot, explorer: ExplorerWidget, url: str, notifications: list[str]) -> str:
    """Open *url*, which fails; return the error notification."""
    notifications.clear()
    _open(qtbot, explorer, url)
    qtbot.waitUntil(lambda: bool(notifications), timeout=60000)
    assert explorer.report is None or explorer.url != url
    return notifications[-1]


def _dock_texts(widget) -> list[str]:
    from test_credentials_docks import shown_texts

    return shown_texts(widget.parentWidget() or widget)


def test_access_denied_and_timeouts_say_what_a_napari_user_can_do(
    make_napari_viewer,
    qtbot,
    private,
    silent: str,
    s3_server,
    notifications,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    forget_passwords,
):
    for var in AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    viewer = make_napari_viewer(show=True)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    texts: list[str] = []

    # a private bucket without credentials: the variables to start napari with
    image = write_ome_image(tmp_path / "img.ome.zarr", shape=(8, 8), axes="yx", levels=1)
    bucket_url = s3_server.upload(
        image, s3_server.private_bucket, f"t-{uuid.uuid4().hex[:8]}/img.ome.zarr"
    )
    message = _failed_open(qtbot, explorer, bucket_url, notifications)
    assert "Access denied" in message, message
    assert "AWS_ACCESS_KEY_ID" in message and "AWS_PROFILE" in message, message
    assert "start napari with" in message, message
    texts += [message, *_dock_texts(explorer)]

    # a server that wants a password: put it in the URL
    message = _failed_open(qtbot, explorer, f"{private.url}/img.ome.zarr", notifications)
    assert "401" in message, message
    assert "user:PASSWORD@host" in message, message
    texts += [message, *_dock_texts(explorer)]

    # a server that does not answer: the variable that gives it longer
    message = _failed_open(qtbot, explorer, f"{silent}/img.ome.zarr", notifications)
    assert "did not answer within 0.5 s" in message, message
    assert "NZE_REMOTE_TIMEOUT" in message and "start napari with" in message, message
    texts += [message, *_dock_texts(explorer)]

    # a token in the query string, and a chained URL: what the dock can open instead
    message = _failed_open(qtbot, explorer, f"{private.url}/img.ome.zarr?token=abc", notifications)
    assert "query string" in message and "user:PASSWORD@host" in message, message
    texts += [message, *_dock_texts(explorer)]
    message = _failed_open(
        qtbot, explorer, f"simplecache::{private.url}/img.ome.zarr", notifications
    )
    assert "chained URLs" in message and "plain URL" in message, message
    texts += [message, *_dock_texts(explorer), explorer.status_label.fullText()]

    assert explorer.recent_stores() == []
    assert _options_named(texts) == []
    assert _options_named(notifications) == []


def test_every_remote_hint_of_the_core_reads_in_dock_words() -> None:
    """Each core hint naming storage options, as every dock shows it, names none."""
    from napari_zarr_explorer._qt._common import dock_words, error_text
    from napari_zarr_explorer.errors import ExplorerError
    from napari_zarr_explorer.store import remote

    root = Path(__file__).resolve().parents[2] / "src" / "napari_zarr_explorer"
    hints = [remote._S3_HINT, remote._GCS_HINT, remote._HTTP_HINT]
    for source in sorted((root / "store").glob("*.py")):
        text = source.read_text(encoding="utf-8")
        # the string literals of each hint=, joined as Python joins them
        for call in re.findall(r"hint=\(?((?:\s*f?\"[^\"]*\"\s*)+)", text):
            hints.append("".join(re.findall(r"\"([^\"]*)\"", call)))
        hints += re.findall(r"\"([^\"\n]*storage options[^\"\n]*)\"", text)
    hints = [
        h.replace("{_OPTIONS_HOW}", remote._OPTIONS_HOW)
        .replace("{ENV_PREFIX}", "NZE_REMOTE_")
        .replace("{_OPTION_PREFIX}", "explorer_")
        for h in hints
    ]
    flagged = [h for h in hints if re.search(r"storage[-_ ]options", h)]
    assert len(flagged) >= 6, "hints not found: the pattern above needs updating"
    shown = []
    for hint in flagged:
        error = ExplorerError("Access denied (HTTP 403) reading s3://b/k.", hint=hint)
        shown += [dock_words(hint), error_text(error)]  # what every dock shows
    assert _options_named(shown) == []
    assert [s for s in shown if "storage options" in s] == []
    gcs = dock_words(remote._GCS_HINT)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in gcs and "start napari" in gcs, gcs


def test_every_write_hint_of_a_recompression_reads_in_dock_words() -> None:
    """The hints for a bucket refusing a write (S3, GCS), as the Recompress dock shows them,
    name the environment napari starts with, never the output's storage options: the docks'
    replacements must match the core's words character for character."""
    from napari_zarr_explorer._qt._common import dock_words, error_text
    from napari_zarr_explorer.errors import AccessDeniedError
    from napari_zarr_explorer.recompress import _io

    assert set(_io._WRITE_HINTS) == {"s3", "gs"}, "a new hint: check it reads in dock words"
    for protocol, hint in _io._WRITE_HINTS.items():
        error = AccessDeniedError(
            f"Writing {protocol}://b/out.zarr/zarr.json was refused.", hint=hint
        )
        for shown in (dock_words(hint), error_text(error)):
            assert not re.search(r"storage[-_ ]options", shown), shown
            assert "start napari with" in shown, shown
    assert "GOOGLE_APPLICATION_CREDENTIALS" in dock_words(_io._WRITE_HINTS["gs"])
    assert "AWS_ACCESS_KEY_ID" in dock_words(_io._WRITE_HINTS["s3"])


def test_a_url_that_failed_to_open_stays_in_the_box_as_typed(
    make_napari_viewer, qtbot, private, notifications, forget_passwords, refused_port
):
    viewer = make_napari_viewer(show=True)
    _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
    # the host's port mistyped: nothing listens there
    typo = f"http://ann:{SECRET}@127.0.0.1:{refused_port}/img.ome.zarr"
    message = _failed_open(qtbot, explorer, typo, notifications)
    assert "ann:***@127.0.0.1" in message, message
    # the box keeps what the user typed, password and all, to correct the typo in it
    assert explorer.location_edit.text() == typo
    assert SECRET not in explorer.status_label.fullText()
    assert "ann:***@" in explorer.status_label.fullText()
    assert explorer.recent_stores() == []
    others = [t for t in _dock_texts(explorer) if t != typo]  # every text but the box's own
    assert not [t for t in others if SECRET in t]
    assert not [m for m in notifications if SECRET in m]

    # the port corrected in the box: it opens, and then shows as it may be shown
    fixed = typo.replace(typo.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{private.port}")
    explorer.location_edit.setText(fixed)
    qtbot.mouseClick(explorer.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not explorer.busy and explorer.report is not None, timeout=60000)
    shown = fixed.replace(SECRET, "***")
    assert explorer.location_edit.text() == shown
    assert explorer.recent_stores() == [shown]
    assert not [t for t in _dock_texts(explorer) if SECRET in t]
    assert not [m for m in notifications if SECRET in m]


def test_dock_words_leave_paths_alone_and_read_as_sentences():
    from napari_zarr_explorer._qt._common import dock_words

    # a flag's name inside a path is part of the path
    for path in ("/data/scan--overwrite/a.zarr", "exp1--resume.zarr", "/d/--no-verify.zarr"):
        assert dock_words(f"{path}: cannot be read.") == f"{path}: cannot be read."
    assert dock_words("Run again with --resume.") == "Run again with Resume."
    assert dock_words(
        "x: an incomplete output; do not trust its contents. Finish it with "
        "`napari-zarr-explorer recompress ... --resume` or delete it."
    ).endswith("Finish it in Recompress with Resume ticked, or delete it.")
    damaged = "The source is damaged there; `napari-zarr-explorer chunks --verify` lists every"
    assert dock_words(f"{damaged} damaged chunk.") == (
        "The source is damaged there; the Chunk map with Verify ticked shows every damaged chunk."
    )
    for hint in (
        "`napari-zarr-explorer inspect` shows its totals; map a smaller multiscale level "
        "(--level) instead.",
        "The listing-based map (without --verify) still works.",
        "Fix the dataset path in the metadata, or give the array with --array.",
    ):
        assert "--" not in dock_words(hint) and "napari-zarr-explorer" not in dock_words(hint)
