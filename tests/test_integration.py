"""Checks across parts: what one part writes, the others read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import MetadataError
from napari_zarr_explorer.store import read_json


def test_zfp_output_of_recompress_opens_in_a_fresh_process(tmp_path: Path) -> None:
    pytest.importorskip("imagecodecs")
    from napari_zarr_explorer.recompress import recompress

    data = (np.random.default_rng(0).random((2, 16, 16)) * 10).astype("float32")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=3, chunks=(1, 8, 8))
    dst = tmp_path / "dst.zarr"
    assert recompress(src, dst, compressor="zfp:reversible", zarr_format=3).ok
    code = (
        "import sys, numpy as np; from napari_zarr_explorer import open_pyramid; "
        f"a = open_pyramid({str(dst)!r})[0].compute(); np.save(sys.stdout.buffer, a)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    import io

    np.testing.assert_array_equal(np.load(io.BytesIO(proc.stdout)), data)


def test_json_error_message_reads_naturally(tmp_path: Path) -> None:
    from zarr.storage import LocalStore

    (tmp_path / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gr\noup"}')
    store = LocalStore(tmp_path, read_only=True)
    with pytest.raises(MetadataError) as info:
        read_json(store, "zarr.json", where=str(tmp_path))
    message = str(info.value)
    assert "zarr.json" in message
    assert " at at " not in message
    assert "line 1" in message
    json.dumps(message)


def test_cli_error_lines_escape_control_characters(tmp_path: Path, capsys) -> None:
    from napari_zarr_explorer.cli import main

    hostile = tmp_path / "evil\x1b]0;owned\x07.zarr"
    assert main(["inspect", str(hostile)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b" in err


def test_cli_unexpected_failure_is_one_clear_line(tmp_path: Path) -> None:
    # A store whose root is a directory named like a metadata file makes reading it fail with an
    # OSError deep in the stack; whatever fails, the user sees one line, not a traceback.
    code = (
        "import sys; from napari_zarr_explorer import cli, report\n"
        "def boom(*a, **k): raise RuntimeError('disk on fire')\n"
        "report.inspect = boom\n"
        f"sys.exit(cli.main(['inspect', {str(tmp_path)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "disk on fire" in proc.stderr
    assert "NAPARI_ZARR_EXPLORER_DEBUG" in proc.stderr


def test_storage_options_reach_remote_stores_from_the_command_line(http_server, capsys) -> None:
    from napari_zarr_explorer.cli import main

    testing.write_array(http_server.root / "a.zarr", np.arange(16, dtype="uint8").reshape(4, 4))
    http_server.require_header("Authorization", "Bearer sesame")
    url = f"{http_server.url}/a.zarr"
    assert main(["inspect", url, "--storage-options", "[1]"]) == 1
    assert "expected a JSON object" in capsys.readouterr().err
    assert main(["inspect", url, "--json"]) != 0
    assert "401" in "".join(capsys.readouterr())
    headers = '{"headers": {"Authorization": "Bearer sesame"}}'
    for command in (["inspect"], ["chunks"], ["validate"], ["estimate", "--compressor", "gzip"]):
        assert main([*command, url, "--json", "--storage-options", headers]) in (0, 3), command
        out = capsys.readouterr().out
        assert json.loads(out), command
