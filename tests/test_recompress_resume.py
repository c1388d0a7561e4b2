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
from test_recompress import chunk_files, tree_hash

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ARGS = ["--chunks", "1,16,16", "--shards", "1,32,32", "--task-size", "0.001", "--threads", "1"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-W", "ignore", "-m", "napari_zarr_explorer", "recompress", *args]


def _kill_when_started(cmd: list[str], dst: Path, delay: float) -> int | None:
    """Start *cmd*, wait until it is writing, wait *delay* more, SIGKILL it; return its code."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (dst / JOURNAL_NAME).exists():
                break
            time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
def test_sigkill_then_resume_gives_an_exact_copy(tmp_path: Path, delay: float) -> None:
    data = testing.blobs((24, 128, 128), seed=3, dtype="uint16")
    data[5:7] = 0  # whole planes of fill: missing chunks in the source and the output
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(1, 16, 16))
    before = tree_hash(src)
    dst = tmp_path / "dst.zarr"
    code = _kill_when_started(_cli(str(src), str(dst), *ARGS), dst, delay)
    assert code in (0, -signal.SIGKILL)
    if (dst / JOURNAL_NAME).exists():
        # Interrupted before the end: the output says it is incomplete.
        attrs = json.loads((dst / "zarr.json").read_text())["attributes"]
        assert attrs[MARKER_KEY]["incomplete"] is True
        assert attrs[MARKER_KEY]["source"] == str(src)
    out = subprocess.run(
        _cli(str(src), str(dst), *ARGS, "--resume", "--json"),
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
