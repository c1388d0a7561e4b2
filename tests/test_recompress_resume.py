"""Interrupting the recompress command line with SIGKILL, then continuing with --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.recompress import JOURNAL_NAME, MARKER_KEY
from servers import LoopbackHTTPServer, serve_directory
from test_recompress import chunk_files, tree_hash

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ARGS = ["--chunks", "1,16,16", "--shards", "1,32,32", "--task-size", "0.001", "--threads", "1"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-W", "ignore", "-m", "napari_zarr_explorer", "recompress", *args]


def _journal_units(dst: Path) -> list[list[list[int]]]:
    """The task records of the progress journal (lines cut short by the kill are ignored)."""
    units = []
    for line in (dst / JOURNAL_NAME).read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "units" in rec:
            units.append(rec["units"])
    return units


def _kill_when_blocked(cmd: list[str], server: LoopbackHTTPServer, plane: int, dst: Path) -> int:
    """Start *cmd*; SIGKILL it once it has asked for plane *plane* (which the server holds)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            asked = any(p.startswith(f"src.zarr/{plane}.") for p in list(server.arrived))
            if asked and (dst / JOURNAL_NAME).exists() and _journal_units(dst):
                break
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("plane", [2, 12, 23])
def test_sigkill_then_resume_gives_an_exact_copy(tmp_path: Path, plane: int) -> None:
    """Killed while a source read hangs at *plane*: planes before it are done, the rest not."""
    data = testing.blobs((24, 128, 128), seed=3, dtype="uint16")
    data[5:7] = 0  # whole planes of fill: missing chunks in the source and the output
    www = tmp_path / "www"
    src = testing.write_array(www / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    before = tree_hash(src)
    dst = tmp_path / "dst.zarr"
    with serve_directory(www) as server:
        url = f"{server.url}/src.zarr"
        # The source hangs at this plane (until the server stops): the run cannot get past it.
        server.slow(f"src.zarr/{plane}.*", 600)
        code = _kill_when_blocked(_cli(url, str(dst), *ARGS), server, plane, dst)
        assert code == -signal.SIGKILL
        # Killed mid-run: the output says it is incomplete, and the journal holds some tasks,
        # all of them before the plane that hung, never the ones after it.
        attrs = json.loads((dst / "zarr.json").read_text())["attributes"]
        assert attrs[MARKER_KEY]["incomplete"] is True
        assert attrs[MARKER_KEY]["source"] == url
        done = _journal_units(dst)
        assert done
        assert all(units[0][1] <= plane for units in done), done
        server.clear_faults()
        out = subprocess.run(
            _cli(url, str(dst), *ARGS, "--resume", "--json"),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and report["verified"] and report["resumed"]
    assert tree_hash(src) == before
    arr = zarr.open_array(dst, mode="r")
    np.testing.assert_array_equal(arr[...], data)
    assert MARKER_KEY not in arr.attrs
    assert not (dst / JOURNAL_NAME).exists()
    # exactly the non-empty shards exist, nothing else
    expected = {
        f"c/{z}/{y}/{x}"
        for z in range(24)
        for y in range(4)
        for x in range(4)
        if data[z, y * 32 : (y + 1) * 32, x * 32 : (x + 1) * 32].any()
    }
    assert chunk_files(dst) == expected


def test_cli_refuses_existing_output_and_reports_errors(tmp_path: Path) -> None:
    src = testing.write_array(tmp_path / "src.zarr", np.ones((4, 4), "uint8"), zarr_format=2)
    dst = tmp_path / "dst.zarr"
    dst.mkdir()
    (dst / "x").write_text("x")
    out = subprocess.run(_cli(str(src), str(dst)), capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "already exists" in out.stderr
    out = subprocess.run(
        _cli(str(src), str(tmp_path / "o.zarr"), "--compressor", "brotli"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "unknown compressor" in out.stderr


def test_cli_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from napari_zarr_explorer.cli import main

    data = testing.blobs((2, 32, 32), dtype="uint16")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 8, 8))
    dst = tmp_path / "dst.zarr"
    code = main(
        [
            "recompress",
            str(src),
            str(dst),
            "--compressor",
            "blosc-zstd:5",
            "--shuffle",
            "bit",
            "--chunks",
            "1,16,16",
            "--shards",
            "2,32,32",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["compressor"] == "blosc-zstd:level=5,shuffle=bit"
    np.testing.assert_array_equal(zarr.open_array(dst, mode="r")[...], data)
    code = main(["recompress", str(src), str(tmp_path / "v2.zarr"), "--zarr-format", "2"])
    assert code == 0
    assert "OK, verified" in capsys.readouterr().out
    assert (tmp_path / "v2.zarr" / ".zarray").exists()
    code = main(["recompress", str(src), str(tmp_path / "n.zarr"), "--replace", "--no-verify"])
    assert code == 1
    capsys.readouterr()
    code = main(["recompress", str(src), str(tmp_path / "p.zarr"), "--dry-run", "--json"])
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["arrays"][0]["chunks"] == [1, 8, 8]
    assert not (tmp_path / "p.zarr").exists()
    os.sync()
