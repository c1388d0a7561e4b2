"""``napari-zarr-explorer validate``: the conformance JSON protocol, exit codes, human output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.cli import main
from scripts import SRC


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "napari_zarr_explorer", "validate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        # this checkout's package, not whichever the interpreter has installed
        env={
            "COLUMNS": "200",
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "PYTHONPATH": str(SRC),
        },
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    return testing.write_ome_image(
        root / "img.ome.zarr", version="0.5", shape=(2, 2, 16, 16), levels=2, labels=True
    )


@pytest.fixture
def broken(image: Path, tmp_path: Path) -> Path:
    """A copy of the image whose second level is gone and whose label document is corrupt."""
    copy = Path(shutil.copytree(image, tmp_path / "broken.ome.zarr"))
    shutil.rmtree(copy / "1")
    (copy / "labels" / "cells" / "zarr.json").write_text("{")
    return copy


def test_json_valid_store(image: Path) -> None:
    proc = run_cli(str(image), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert out == {"valid": True, "message": out["message"]}
    assert out["message"].startswith("valid OME-NGFF 0.5 image")


def test_json_invalid_store_still_exits_0(broken: Path) -> None:
    proc = run_cli("--json", str(broken))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"valid", "message"}
    assert out["valid"] is False
    # The message says where: file and JSON path.
    assert "zarr.json#/attributes/ome/multiscales/0/datasets/1/path" in out["message"]
    assert "labels/cells/zarr.json" in out["message"]


def test_human_output(broken: Path) -> None:
    proc = run_cli(str(broken))
    assert proc.returncode == 0, proc.stderr
    assert "invalid" in proc.stdout
    assert "where (file#JSON path)" in proc.stdout  # the table
    assert "/attributes/ome/multiscales/0/datasets/1/path" in proc.stdout
    assert "labels/cells" in proc.stdout


def test_strict(image: Path) -> None:
    proc = run_cli(str(image), "--json", "--strict")
    assert proc.returncode == 0
    out = json.loads(proc.stdout)
    assert out["valid"] is False
    assert "strict schema" in out["message"]


def test_unreadable_inputs_exit_nonzero(tmp_path: Path) -> None:
    proc = run_cli(str(tmp_path / "missing.zarr"), "--json")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "missing.zarr: no such file or directory" in proc.stderr
    bad = tmp_path / "attrs.json"
    bad.write_text('{"ome": ')
    proc = run_cli(str(bad), "--json")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "attrs.json: invalid JSON" in proc.stderr


def test_in_process_json_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "zarr.json"
    doc.write_text(
        json.dumps(
            {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {"ome": {"version": "0.5", "plate": {"rows": []}}},
            }
        )
    )
    assert main(["validate", str(doc), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False
    assert "zarr.json#/attributes/ome/plate/rows" in out["message"]
    assert main(["validate", str(doc)]) == 0
    text = capsys.readouterr().out
    assert "invalid" in text and "rows" in text  # the table wraps at the console width


# Remote stores that cannot be read: fail at once (one retry, short timeout).
FAST = '{"explorer_retries": 1, "explorer_backoff": 0.01, "explorer_timeout": 2}'


@pytest.fixture
def closed_url(tmp_path: Path) -> str:
    """The URL of a store on a port nothing listens on any more: connections are refused."""
    from servers import serve_directory

    with serve_directory(tmp_path) as srv:
        url = srv.url
    return f"{url}/x.zarr"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_unreachable_store_is_no_verdict(closed_url: str, as_json: bool) -> None:
    """A store that cannot be reached was not judged: exit 1, why on stderr, nothing on stdout."""
    proc = run_cli(closed_url, "--storage-options", FAST, *(["--json"] if as_json else []))
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout == ""
    assert closed_url in proc.stderr
    assert "Connection refused by 127.0.0.1:" in proc.stderr and "Errno" not in proc.stderr
    assert "that the server is running" in proc.stderr  # what to do


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_store_the_server_refuses_is_no_verdict(image: Path, http_server, as_json: bool) -> None:
    shutil.copytree(image, http_server.root / "img.ome.zarr")
    http_server.fail("*", 403)
    url = f"{http_server.url}/img.ome.zarr"
    proc = run_cli(url, "--storage-options", FAST, *(["--json"] if as_json else []))
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout == ""
    assert url in proc.stderr and "Access denied" in proc.stderr
    assert "--storage-options" in proc.stderr  # the flag that passes credentials here
